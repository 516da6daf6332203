"""Razorpay: its REST client (`client`), UPI through its QR codes (`upi`), its webhooks
(`webhooks`), and what it sends, read into our signals once (`wire`)."""
