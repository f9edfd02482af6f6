"""The Local Identity Directory: SCIM users and groups stored in provisor's database."""
