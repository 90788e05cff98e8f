"""Identity and encryption: certificates, TLS settings, principals, bindings.

`settings` holds what a process was told (--tls-*, --credentials, tokens);
`certs` makes a small CA for tests and small clusters; `grpc_auth` and
`http_auth` find the principal of each call; `acl.authorize` is the one place
later ACL rules plug in.
"""
