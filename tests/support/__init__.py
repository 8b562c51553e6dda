"""What the tests (and bench/) share: one copy of each fixture's machinery.

- ``waiting``: ``wait_until`` / ``await_until``, the only way a test waits for a state;
- ``net``: free loopback ports;
- ``broker``: a single-node Kafka driven through deploy/local/kafka (tests and bench/);
- ``kafka``: topics created and read back for assertions;
- ``relay``: ``relay serve`` as a subprocess, its environment and a delivery helper;
- ``metrics``: series read from a Prometheus scrape;
- ``server_thread``: an ASGI app served by uvicorn from a background thread.

Nothing here imports pytest, so bench/ can use it too.
"""
