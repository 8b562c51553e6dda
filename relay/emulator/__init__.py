"""An UltraCart emulator for tests and local development.

It serves the webhook management endpoints of UltraCart's REST API v2 from in-memory state
(``api``), the OAuth endpoints (``oauth``), and delivers webhooks the way UltraCart does
(``delivery``). ``relay emulator`` runs it; ``create_emulator_app`` builds it for tests.
"""
