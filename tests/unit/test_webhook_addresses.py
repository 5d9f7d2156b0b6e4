"""Where webhooks may go: an IPv6 address that embeds an IPv4 address is judged
by that IPv4 address (issue 11, item 3), at subscribe and for every DNS answer
at delivery (both call `public_address`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalpos.domain.webhooks import embedded_ipv4, public_address

V4 = ipaddress.IPv4Address
PUBLIC = V4("8.8.4.4")


def mapped(v4: V4) -> str:
    return str(ipaddress.IPv6Address((0xFFFF << 32) | int(v4)))


def translated(v4: V4) -> str:
    return str(ipaddress.IPv6Address((0xFFFF << 48) | int(v4)))


def compatible(v4: V4) -> str:
    return str(ipaddress.IPv6Address(int(v4)))


def nat64(v4: V4) -> str:
    return str(ipaddress.IPv6Address((0x0064_FF9B << 96) | int(v4)))


def nat64_local(v4: V4, subnet: int = 0) -> str:
    # 64:ff9b:1::/48 with a /96 layout: 48 bits of the operator's own, then the IPv4.
    return str(ipaddress.IPv6Address((0x0064_FF9B_0001 << 80) | (subnet << 32) | int(v4)))


def nat64_local_48(v4: V4) -> str:
    # 64:ff9b:1::/48 with RFC 6052's /48 layout: the IPv4 in bits 48-63 and 72-87.
    x = int(v4)
    return str(
        ipaddress.IPv6Address((0x0064_FF9B_0001 << 80) | ((x >> 16) << 64) | ((x & 0xFFFF) << 40))
    )


def nat64_local_64(v4: V4) -> str:
    # 64:ff9b:1::/48 with a /64 layout: the IPv4 in bits 72-103.
    return str(ipaddress.IPv6Address((0x0064_FF9B_0001 << 80) | (int(v4) << 24)))


def six_to_four(v4: V4, rest: int = 1) -> str:
    return str(ipaddress.IPv6Address((0x2002 << 112) | (int(v4) << 80) | rest))


def teredo_client(v4: V4, server: V4 = PUBLIC) -> str:
    flags_port = 0x8000_63BF
    return str(
        ipaddress.IPv6Address(
            (0x2001_0000 << 96) | (int(server) << 64) | (flags_port << 32) | (~int(v4) & 0xFFFFFFFF)
        )
    )


def teredo_server(v4: V4, client: V4 = PUBLIC) -> str:
    return str(
        ipaddress.IPv6Address((0x2001_0000 << 96) | (int(v4) << 64) | (~int(client) & 0xFFFFFFFF))
    )


# Forms that carry one IPv4 address: each is exactly as public as it.
EMBEDDINGS: list[Callable[[V4], str]] = [
    mapped,
    translated,
    compatible,
    nat64,
    six_to_four,
    teredo_client,
    teredo_server,
]
# Local-use NAT64 does not say which layout its network uses: an address is only
# public when the IPv4 of every layout is, so a private IPv4 in any layout is refused.
LOCAL_NAT64 = [nat64_local, nat64_local_48, nat64_local_64]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        # The two probes of the issue.
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("::127.0.0.1", False),  # IPv4-compatible loopback
        # Each form, with a private and a public IPv4 address inside.
        ("::ffff:10.1.2.3", False),
        ("::ffff:8.8.8.8", True),
        ("::ffff:0:169.254.169.254", False),  # IPv4-translated metadata service
        ("::ffff:0:1.1.1.1", True),
        ("::10.0.0.1", False),
        ("::8.8.8.8", True),
        ("64:ff9b::169.254.169.254", False),
        ("64:ff9b::127.0.0.1", False),
        ("64:ff9b::8.8.8.8", True),
        ("64:ff9b:1:abcd::192.168.1.1", False),
        # Local-use NAT64: the /48 layout reads 10.0.0.1 where the /96 one reads 8.8.8.8.
        ("64:ff9b:1:a00:0:100:808:808", False),
        # Public in the /96 layout, 0.0.0.0 in the /48 one: ambiguous, refused (a
        # network that needs it sets LOYALPOS_WEBHOOK_PRIVATE_NETWORK=true).
        ("64:ff9b:1::8.8.8.8", False),
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::", False),  # 6to4 of 169.254.169.254
        ("2002:c0a8:101:5::1", False),  # 6to4 of 192.168.1.1
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        # Teredo (RFC 4380's example: server 65.54.227.120, client 192.0.2.45,
        # a documentation address) and variants.
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),
        ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", True),  # client 8.8.8.8
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # client 127.0.0.1
        ("2001:0:a00:1:8000:63bf:f7f7:f7f7", False),  # server 10.0.0.1
        # The edges of ::/96: unspecified and loopback stay refused.
        ("::", False),
        ("::1", False),
        ("::2", False),
        # Not embeddings: judged as IPv6 addresses.
        ("2606:4700:4700::1111", True),
        ("64:ff9b:2::8.8.8.8", True),  # outside both NAT64 prefixes: global unicast
        ("fd00::10.0.0.1", False),  # unique local, whatever follows
        ("fe80::1%eth0", False),
        ("fec0::1", False),  # the old site-local block, which 3.11 calls global
        ("3fff::1", False),  # documentation (RFC 9637)
        ("5f00::1", False),  # SRv6 SIDs
        ("ff02::1", False),
        ("2001:db8::1", False),
        # Plain IPv4.
        ("8.8.8.8", True),
        ("10.0.0.1", False),
    ],
)
def test_embedded_ipv4_is_judged_as_ipv4(address: str, public: bool) -> None:
    assert public_address(address) is public


def test_what_each_form_embeds() -> None:
    ip = ipaddress.ip_address
    assert embedded_ipv4(ip("64:ff9b::a00:1")) == (V4("10.0.0.1"),)
    assert embedded_ipv4(ip("::127.0.0.1")) == (V4("127.0.0.1"),)
    assert embedded_ipv4(ip("2002:c0a8:101::1")) == (V4("192.168.1.1"),)
    assert embedded_ipv4(ip("2001:0:4136:e378:8000:63bf:3fff:fdd2")) == (
        V4("65.54.227.120"),
        V4("192.0.2.45"),
    )
    assert embedded_ipv4(ip("2606:4700:4700::1111")) == ()
    assert embedded_ipv4(ip("10.0.0.1")) == ()


NON_PUBLIC_V4 = [
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]


@st.composite
def non_public_v4(draw: st.DrawFn) -> V4:
    net = draw(st.sampled_from(NON_PUBLIC_V4))
    offset = draw(st.integers(0, net.num_addresses - 1))
    return V4(int(net.network_address) + offset)


@given(non_public_v4(), st.sampled_from(EMBEDDINGS + LOCAL_NAT64))
def test_every_embedding_of_a_private_ipv4_is_refused(v4: V4, embed: Callable[[V4], str]) -> None:
    assert not public_address(str(v4))
    assert not public_address(embed(v4))


@given(st.integers(0, 2**32 - 1).map(V4), st.sampled_from(EMBEDDINGS))
def test_every_embedding_is_judged_as_its_ipv4(v4: V4, embed: Callable[[V4], str]) -> None:
    assert public_address(embed(v4)) is public_address(str(v4))


@given(non_public_v4(), st.integers(0, 2**48 - 1), st.integers(0, 2**80 - 1))
def test_the_free_bits_do_not_matter(v4: V4, subnet: int, rest: int) -> None:
    assert not public_address(nat64_local(v4, subnet))
    assert not public_address(six_to_four(v4, rest))
