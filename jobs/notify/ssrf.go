package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrBlockedAddress is wrapped by every refusal of a webhook target on
// SSRF grounds: a loopback, private, link-local or otherwise internal
// address, found in the URL, by DNS, or on the socket being connected.
var ErrBlockedAddress = errors.New("address is not a public internet address")

// ErrLookupUnavailable is wrapped when a URL's host could not be resolved
// for a reason that may pass: a DNS timeout, a temporary resolver failure
// (SERVFAIL), or the caller's ctx ending first. The URL was not judged, so
// the request is worth retrying (503 with Retry-After), unlike a name that
// does not exist or an address that is blocked, which are the client's to
// fix (422). The resolver's own error is wrapped too.
var ErrLookupUnavailable = errors.New("the host name could not be resolved right now")

// checkURLTimeout bounds CheckURL's DNS lookup.
const checkURLTimeout = 5 * time.Second

// CheckURL validates a webhook URL when it is accepted (for example from a
// payment's callback_url): the scheme must be http or https, and unless
// allowPrivate, the host must resolve and none of its addresses may be
// internal (see ErrBlockedAddress). It uses net.DefaultResolver with a
// short timeout; CheckURLContext takes the caller's ctx instead.
//
// A URL that passes can still be refused at send time: DNS can change, so
// Webhook checks the address it actually connects to as well.
func CheckURL(rawURL string, allowPrivate bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), checkURLTimeout)
	defer cancel()
	return CheckURLContext(ctx, rawURL, allowPrivate)
}

// CheckURLContext is CheckURL with the caller's ctx bounding the lookup.
//
// Its error wraps ErrBlockedAddress for an internal target and
// ErrLookupUnavailable when DNS could not answer for now (or ctx ended
// first); any other error is a URL that will not do.
func CheckURLContext(ctx context.Context, rawURL string, allowPrivate bool) error {
	return checkURL(ctx, rawURL, allowPrivate, net.DefaultResolver.LookupNetIP)
}

// lookupFunc resolves a host name; tests and fuzzing replace the resolver
// so that they never touch the network.
type lookupFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

func checkURL(ctx context.Context, rawURL string, allowPrivate bool, lookup lookupFunc) error {
	u, err := parseTarget(rawURL)
	if err != nil {
		return err
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	if addr, ok, err := literalHost(host); err != nil || ok {
		if err != nil {
			return err
		}
		return checkAddr(addr)
	}
	addrs, err := lookup(ctx, "ip", host)
	if err != nil {
		if lookupMayPass(ctx, err) {
			return fmt.Errorf("webhook URL: resolve %q: %w: %w", host, ErrLookupUnavailable, err)
		}
		return fmt.Errorf("webhook URL: resolve %q: %w", host, err)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("webhook URL: %q has no addresses", host)
	}
	// Every address must pass: a client may connect to any of them.
	for _, a := range addrs {
		if err := checkAddr(a); err != nil {
			return fmt.Errorf("webhook URL: %q resolves to %s: %w", host, a, err)
		}
	}
	return nil
}

// lookupMayPass reports whether a failed lookup says nothing about the
// name: the resolver timed out or failed for now, or ctx ended. "No such
// host" and any other answer are verdicts, and stay validation errors.
func lookupMayPass(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsTimeout || (dnsErr.IsTemporary && !dnsErr.IsNotFound)
	}
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// parseTarget checks a webhook URL's syntax: absolute http or https, a
// host, a numeric port if any. The error never repeats the URL, which may
// hold credentials.
func parseTarget(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("webhook URL: not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("webhook URL: scheme must be http or https, got %q", u.Scheme)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return nil, errors.New("webhook URL: missing host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("webhook URL: invalid port %q", p)
		}
	}
	return u, nil
}

// literalHost decides a host without DNS when it can. ok reports an IP
// literal (returned as addr). err refuses names that are internal by
// definition (localhost, RFC 6761) or that look numeric without being an
// IP literal ("127.1", "2130706433", "0x7f.1"): some resolvers read those
// as IPv4 addresses, and no real domain's last label is numeric.
func literalHost(host string) (addr netip.Addr, ok bool, err error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a, true, nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return netip.Addr{}, false, fmt.Errorf("webhook URL: %w: %s", ErrBlockedAddress, host)
	}
	last := name[strings.LastIndexByte(name, '.')+1:]
	if isDigits(last) || (strings.HasPrefix(last, "0x") && isHex(last[2:])) {
		return netip.Addr{}, false, fmt.Errorf("webhook URL: %w: numeric host %q is not a valid IP address", ErrBlockedAddress, host)
	}
	return netip.Addr{}, false, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// blockedV4 are the IPv4 ranges a webhook may not reach: everything that
// is not a routable public unicast address.
var blockedV4 = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network"; 0.0.0.0 reaches localhost on Linux
	netip.MustParsePrefix("10.0.0.0/8"),     // RFC 1918
	netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT, RFC 6598
	netip.MustParsePrefix("127.0.0.0/8"),    // loopback
	netip.MustParsePrefix("169.254.0.0/16"), // link-local, where cloud metadata lives
	netip.MustParsePrefix("172.16.0.0/12"),  // RFC 1918
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("192.168.0.0/16"), // RFC 1918
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking, used inside labs
	netip.MustParsePrefix("224.0.0.0/4"),    // multicast
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, and broadcast
}

// blockedV6 are IPv6 ranges beyond what netip's predicates cover.
var blockedV6 = []netip.Prefix{
	netip.MustParsePrefix("::/96"),          // IPv4-compatible (deprecated), includes :: and ::1
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64, RFC 8215
	netip.MustParsePrefix("100::/64"),       // discard-only
	netip.MustParsePrefix("2001::/32"),      // Teredo: tunnels to an embedded IPv4 address
	netip.MustParsePrefix("fec0::/10"),      // site-local (deprecated, still routed by some stacks)
}

// Prefixes whose addresses embed an IPv4 address that the network will
// reach: that embedded address is checked as IPv4.
var (
	nat64Prefix  = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052, IPv4 in the last 4 bytes
	sixToFourNet = netip.MustParsePrefix("2002::/16")    // RFC 3056, IPv4 in bytes 2–5
)

// checkAddr returns an error wrapping ErrBlockedAddress when a webhook may
// not connect to a.
func checkAddr(a netip.Addr) error {
	if blockedAddr(a) {
		return fmt.Errorf("%w: %s", ErrBlockedAddress, a)
	}
	return nil
}

func blockedAddr(a netip.Addr) bool {
	if !a.IsValid() {
		return true
	}
	// ::ffff:127.0.0.1 reaches 127.0.0.1: judge the IPv4 address inside.
	a = a.WithZone("").Unmap()
	if a.Is4() {
		for _, p := range blockedV4 {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	if a.IsLoopback() || a.IsPrivate() || a.IsUnspecified() || a.IsMulticast() ||
		a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
		return true
	}
	for _, p := range blockedV6 {
		if p.Contains(a) {
			return true
		}
	}
	b := a.As16()
	switch {
	case nat64Prefix.Contains(a):
		return blockedAddr(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	case sixToFourNet.Contains(a):
		return blockedAddr(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
	}
	return false
}

// dialControl runs on every socket a webhook opens, after DNS and before
// connect, with the address actually being dialled. Checking here rather
// than only when the URL was accepted defeats DNS rebinding, where a name
// resolves to a public address for the check and to an internal one for
// the connection.
func dialControl(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return fmt.Errorf("%w: network %s", ErrBlockedAddress, network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparsable address %q", ErrBlockedAddress, address)
	}
	return checkAddr(ap.Addr())
}
