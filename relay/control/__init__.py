"""Control plane: manage UltraCart webhook subscriptions from relay.

The pieces, each in its own module: an UltraCart REST client (``client``), its credentials
(``credentials``, ``oauth``), the desired state read from ``config/webhooks.toml``
(``desired``), the diff between desired and actual (``plan``), executing it (``apply``),
credential rotation (``rotate``), the status poller (``status_poller``) and the CLI (``cli``).
"""
