"""The providers more than one service calls, each once: its wire calls and how its errors read.
A service's own provider module adapts its message types onto these (and keeps its webhooks when
only it reads them). `twilio` needs the `sms` extra (`rtmn-shared[sms]`), so only the services
that send texts carry the Twilio SDK; `msg91` is plain aiohttp."""
