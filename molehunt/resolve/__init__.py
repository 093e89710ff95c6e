"""Who is who, once: accounts, IPs, hosts and logons resolved to people, for detection,
attribution and the identity verbs alike (:class:`Resolver`)."""

from molehunt.resolve.relations import Resolver, plain_user, short_host

__all__ = ["Resolver", "plain_user", "short_host"]
