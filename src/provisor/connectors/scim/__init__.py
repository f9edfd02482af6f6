"""SCIM 2.0 connectors: the generic *SCIM System* and SAP *Identity Authentication*.

Both read and write users and groups over SCIM 2.0 (RFC 7643/7644) with the quirks of SAP's
Identity Directory API: cursor paging (``startId``/``nextId``), member batching with PATCH,
``If-Match: *``, SCIM Bulk. :mod:`.types` declares the two connector types and their
properties without importing httpx; :mod:`.connector` implements them.
"""
