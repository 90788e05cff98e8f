"""zk:// addresses: what parses to what, and what a mistyped one tells the user."""

from __future__ import annotations

import pytest

from orbiter.errors import Code
from orbiter.zk import InvalidZkAddress, ZkAddress, is_zk_url, parse_zk_url


@pytest.mark.parametrize(
    ("url", "hosts", "path"),
    [
        ("zk://zk1:2181/orbiter", ("zk1:2181",), "/orbiter"),
        ("zk://a:2181,b:2182,c:2183/orbiter", ("a:2181", "b:2182", "c:2183"), "/orbiter"),
        ("zk://zk1,zk2:2182/orbiter", ("zk1:2181", "zk2:2182"), "/orbiter"),
        ("zk://10.0.0.1:2181/prod/orbiter", ("10.0.0.1:2181",), "/prod/orbiter"),
        ("zk://[::1]:2181/orbiter", ("[::1]:2181",), "/orbiter"),
        ("zk://[fe80::1]/orbiter", ("[fe80::1]:2181",), "/orbiter"),
        ("zk://zk_1.example.com:1/a-b_c.d", ("zk_1.example.com:1",), "/a-b_c.d"),
        ("zk://zk:65535/zookeeper-not", ("zk:65535",), "/zookeeper-not"),
    ],
)
def test_valid_addresses_parse_with_explicit_ports(
    url: str, hosts: tuple[str, ...], path: str
) -> None:
    address = parse_zk_url(url)
    assert address == ZkAddress(hosts, path)
    assert address.connect_string == ",".join(hosts)


def test_the_address_prints_back_as_a_url_with_ports_filled_in() -> None:
    assert str(parse_zk_url("zk://zk1,zk2:2182/orbiter")) == "zk://zk1:2181,zk2:2182/orbiter"
    assert parse_zk_url(str(parse_zk_url("zk://[::1]/x"))) == parse_zk_url("zk://[::1]/x")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("zk://h:1/x", True), ("zk://", True), ("h:2181", False), ("http://h/x", False), ("", False)],
)
def test_is_zk_url_tells_a_zk_address_from_a_master_address(text: str, expected: bool) -> None:
    assert is_zk_url(text) is expected


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://zk1:2181/orbiter", "scheme 'http://' is not zk://"),
        ("zk1:2181/orbiter", "it does not start with zk://"),
        ("ZK://zk1:2181/orbiter", "scheme 'ZK://' is not zk://"),
        ("zk:///orbiter", "no hosts before the path"),
        ("zk://", "no hosts before the path"),
        ("zk://zk1:2181,,zk2:2181/orbiter", "empty host in the host list (a stray comma?)"),
        ("zk://zk1:2181,/orbiter", "empty host in the host list"),
        ("zk://:2181/orbiter", "no host name before the port in ':2181'"),
        ("zk://zk1:/orbiter", "host 'zk1' has ':' but no port after it"),
        ("zk://zk1:abc/orbiter", "port 'abc' of host 'zk1' is not a number"),
        ("zk://zk1:-1/orbiter", "port '-1' of host 'zk1' is not a number"),
        ("zk://zk1:0/orbiter", "port 0 of host 'zk1' is out of range (1-65535)"),
        ("zk://zk1:65536/orbiter", "port 65536 of host 'zk1' is out of range (1-65535)"),
        ("zk://zk1:2181:2182/orbiter", "port '2181:2182' of host 'zk1' is not a number"),
        ("zk://zk!1:2181/orbiter", "host 'zk!1' is not a host name or IP address"),
        ("zk://[::1/orbiter", "host '[::1' opens '[' but never closes it"),
        ("zk://[zk1]:2181/orbiter", "host '[zk1]' is not an IPv6 address"),
        ("zk://[::1]x/orbiter", "unexpected 'x' after host '[::1]'"),
        ("zk://zk1", "no path after the hosts (Orbiter needs a znode of its own, e.g. /orbiter)"),
        ("zk://zk1:2181/", "no path after the hosts"),
        ("zk://zk1:2181/orbiter/", "path '/orbiter/' ends with '/'"),
        ("zk://zk1:2181/a//b", "path '/a//b' has an empty component ('//')"),
        ("zk://zk1:2181/a/./b", "path '/a/./b' has a '.' component; ZooKeeper paths are absolute"),
        ("zk://zk1:2181/a/..", "path '/a/..' has a '..' component"),
        ("zk://zk1:2181/a\x00b", "path '/a\\x00b' has a character ZooKeeper forbids ('\\x00')"),
        ("zk://zk1:2181/a\x7fb", "has a character ZooKeeper forbids ('\\x7f')"),
        ("zk://zk1:2181/a\ufff5", "has a character ZooKeeper forbids"),
        ("zk://zk1/zookeeper", "path '/zookeeper' is under /zookeeper, which ZooKeeper reserves"),
        ("zk://zk1:2181/zookeeper/quota", "is under /zookeeper, which ZooKeeper reserves"),
        ("zk://zk1:2181/orbiter?timeout=5", "query ('?') and fragment ('#') are not allowed"),
        ("zk://zk1:2181/orbiter#leader", "query ('?') and fragment ('#') are not allowed"),
        ("zk://user:secret@zk1:2181/orbiter", "credentials (user@) are not supported"),
        ("zk://zk1:2181/orbiter prod", "it contains whitespace"),
        (" zk://zk1:2181/orbiter", "it contains whitespace"),
    ],
)
def test_bad_address_says_what_is_wrong_and_shows_the_expected_form(url: str, says: str) -> None:
    with pytest.raises(InvalidZkAddress) as caught:
        parse_zk_url(url)
    message = str(caught.value)
    assert message.startswith(f"invalid ZooKeeper address {url!r}: ")
    assert says in message
    assert message.endswith(
        "expected zk://host:port[,host:port...]/path, e.g. zk://zk1:2181,zk2:2181/orbiter"
    )
    assert caught.value.code is Code.INVALID_ARGUMENT
