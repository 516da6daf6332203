"""SendGrid: its v3 Mail Send client (`client`), its signed Event Webhook (`webhooks`), and what
it posts there, read into our email events once (`wire`)."""
