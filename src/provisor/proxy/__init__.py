"""Proxy systems (spec §5): a back-end connector served as a SCIM 2.0 service provider.

Pure of HTTP: ``ProxyService`` takes requests as values and answers SCIM documents or raises
``SCIMError``s; ``web/proxy.py`` is its HTTP face.
"""
