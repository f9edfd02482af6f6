"""The LDAP Server and Microsoft Active Directory connectors (spec §9.3).

``types`` declares both connector types and their properties without importing python-ldap;
``connector`` holds the connectors, which load python-ldap (through ``client``) only when one
is built.
"""
