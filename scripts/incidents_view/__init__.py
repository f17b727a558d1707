"""The incidents view: HTML pages over the receiver's JSON API, for a person's browser.

Served by ``python -m scripts.incidents_cli ui`` on 127.0.0.1 only; it reads the API with the
operator's certificate, so it shows exactly what the operator may already read (docs/incidents.md).
"""
