#!/bin/bash
# Captures the kernel's answers to RTM_GETROUTE lookups as fixtures for
# tests/route_lookup_fixtures.rs. Needs root and iproute2.
#
#   crates/netreach-core/examples/capture-route-lookups.sh [OUTDIR]
#
# Builds two throwaway network namespaces joined by two veth pairs:
#
#   host  lo   (1)  127.0.0.1/8, ::1
#         a0   (2)  198.18.0.2/24, 2001:db8::2/64, fe80::2/64   peer b0: .0.1, ::1, fe80::1
#         a1   (3)  198.18.1.2/24                               peer b1: 198.18.1.1
#         default via 198.18.0.1 / 2001:db8::1 (a0); table 100: default via 198.18.1.1 (a1)
#
# and runs the route_lookup example in the host namespace for each case, with
# RTM_F_FIB_MATCH ("fib") and without ("plain"). Only 198.18.0.0/15 and 2001:db8::/32 are used.
# The namespaces are deleted on exit, also on failure.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/tests/fixtures/route-lookup}
host=nr-reach-$$-host
peer=nr-reach-$$-peer

cleanup() {
    ip netns del "$host" 2>/dev/null || true
    ip netns del "$peer" 2>/dev/null || true
}
trap cleanup EXIT

cargo build -q --manifest-path "$here/Cargo.toml" --example route_lookup
tool=$(cargo metadata -q --format-version 1 --manifest-path "$here/Cargo.toml" \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug/examples/route_lookup

H() { ip -n "$host" "$@"; }
P() { ip -n "$peer" "$@"; }

ip netns add "$host"
ip netns add "$peer"
H link set lo up
P link set lo up
H link add a0 type veth peer name b0 netns "$peer"
H link add a1 type veth peer name b1 netns "$peer"
for l in a0 a1; do H link set "$l" addrgenmode none; done
for l in b0 b1; do P link set "$l" addrgenmode none; done
H addr add 198.18.0.2/24 dev a0
H addr add 198.18.1.2/24 dev a1
H addr add 2001:db8::2/64 dev a0 nodad
H addr add fe80::2/64 dev a0 nodad
P addr add 198.18.0.1/24 dev b0
P addr add 198.18.1.1/24 dev b1
P addr add 2001:db8::1/64 dev b0 nodad
P addr add fe80::1/64 dev b0 nodad
for l in a0 a1; do H link set "$l" up; done
for l in b0 b1; do P link set "$l" up; done
H route add default via 198.18.0.1
H -6 route add default via 2001:db8::1
H route add unreachable 198.18.10.0/24
H route add blackhole 198.18.11.0/24
H route add prohibit 198.18.12.0/24
H route add throw 198.18.13.0/24
H -6 route add unreachable 2001:db8:10::/48
H -6 route add blackhole 2001:db8:11::/48
H -6 route add prohibit 2001:db8:12::/48
H route add 198.18.30.0/24 nexthop via 198.18.0.1 dev a0 nexthop via 198.18.1.1 dev a1
H route add default via 198.18.1.1 table 100
H rule add from 198.18.1.2 lookup 100 pref 100
H rule add to 198.18.20.0/24 unreachable pref 90
H rule add to 198.18.21.0/24 prohibit pref 91
H rule add to 198.18.22.0/24 blackhole pref 92
sleep 1
[ "$(H -o link show a0 | cut -d: -f1)" = 2 ] || { echo "a0 is not index 2" >&2; exit 1; }
[ "$(H -o link show a1 | cut -d: -f1)" = 3 ] || { echo "a1 is not index 3" >&2; exit 1; }

# wait_for DESCRIPTION COMMAND...: polls for up to 5 s (carrier changes reach the routes only
# after the kernel's link watch runs, up to a second later).
wait_for() {
    local what=$1
    shift
    for _ in $(seq 50); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "timed out waiting for $what" >&2
    exit 1
}

mkdir -p "$out"
# capture NAME MODE REMOTE LOCAL [OIF]
capture() {
    local name=$1 mode=$2
    shift 2
    local flag=()
    [ "$mode" = plain ] && flag=(--no-fib-match)
    printf '%-28s ' "$name-$mode"
    "$tool" --netns "$host" "${flag[@]}" --save "$out/$name-$mode.bin" "$@" | sed -n 2p
}

capture v4-gateway fib 198.18.5.1 198.18.0.2
capture v4-gateway plain 198.18.5.1 198.18.0.2
capture v4-connected fib 198.18.0.1 198.18.0.2
capture v4-own-address fib 198.18.0.2 198.18.0.2
capture v4-own-address plain 198.18.0.2 198.18.0.2
capture v4-loopback fib 127.0.0.1 127.0.0.1
capture v4-unreachable fib 198.18.10.1 198.18.0.2
capture v4-unreachable plain 198.18.10.1 198.18.0.2
capture v4-blackhole fib 198.18.11.1 198.18.0.2
capture v4-prohibit fib 198.18.12.1 198.18.0.2
capture v4-throw fib 198.18.13.1 198.18.0.2
capture v4-oif-unreachable fib 198.18.10.1 198.18.0.2 2
capture v4-oif-unreachable plain 198.18.10.1 198.18.0.2 2
capture v4-oif-gone fib 198.18.5.1 198.18.0.2 999
capture v4-policy-table fib 198.18.5.1 198.18.1.2
capture v4-rule-unreachable fib 198.18.20.1 198.18.0.2
capture v4-rule-prohibit fib 198.18.21.1 198.18.0.2
capture v4-rule-blackhole fib 198.18.22.1 198.18.0.2
capture v4-multipath fib 198.18.30.1 198.18.0.2
capture v4-multipath plain 198.18.30.1 198.18.0.2
capture v4-source-not-local fib 198.18.5.1 198.18.0.9
capture v6-gateway fib 2001:db8:5::1 2001:db8::2
capture v6-gateway plain 2001:db8:5::1 2001:db8::2
capture v6-loopback fib ::1 ::1
capture v6-unreachable fib 2001:db8:10::1 2001:db8::2
capture v6-blackhole fib 2001:db8:11::1 2001:db8::2
capture v6-prohibit fib 2001:db8:12::1 2001:db8::2
capture v6-oif-gone fib 2001:db8:5::1 2001:db8::2 999
capture v6-link-local fib fe80::1 fe80::2 2

# Duplicate address detection still running: the source is tentative.
H addr add 2001:db8::7/64 dev a0
H -6 addr show dev a0 tentative | grep -q 2001:db8::7 || { echo "2001:db8::7 not tentative" >&2; exit 1; }
capture v6-tentative-source fib 2001:db8:5::1 2001:db8::7

# The peer goes down: a0 loses carrier and its routes are flagged linkdown.
P link set b0 down
wait_for "linkdown on the default route" sh -c "ip -n $host route show default | grep -q linkdown"
wait_for "linkdown on the IPv6 default route" sh -c "ip -n $host -6 route show default | grep -q linkdown"
capture v4-linkdown fib 198.18.5.1 198.18.0.2
capture v4-linkdown plain 198.18.5.1 198.18.0.2
capture v6-linkdown fib 2001:db8:5::1 2001:db8::2
P link set b0 up
wait_for "carrier back" sh -c "! ip -n $host route show default | grep -q linkdown"

# a0 administratively down: IPv4 flushes its routes, IPv6 its addresses.
H link set a0 down
wait_for "the IPv4 routes of a0 flushed" sh -c "! ip -n $host route show default | grep -q ."
capture v4-admin-down fib 198.18.5.1 198.18.0.2
capture v4-admin-down-oif fib 198.18.5.1 198.18.0.2 2
capture v4-admin-down-own-address fib 198.18.0.2 198.18.0.2
