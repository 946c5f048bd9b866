package admin

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.1/32"),
		netip.MustParsePrefix("2001:db8:1::/48"),
	}
	for _, tc := range []struct {
		name    string
		remote  string
		xff     []string // header lines
		trusted []netip.Prefix
		want    string
	}{
		{"no proxies configured", "203.0.113.5:4000", []string{"198.51.100.1"}, nil, "203.0.113.5"},
		{"untrusted peer's header ignored", "203.0.113.5:4000", []string{"198.51.100.1"}, trusted, "203.0.113.5"},
		{"trusted peer without header", "10.0.0.1:4000", nil, trusted, "10.0.0.1"},
		{"trusted peer", "10.0.0.1:4000", []string{"198.51.100.1"}, trusted, "198.51.100.1"},
		{"client-written entries ignored", "10.0.0.1:4000", []string{"203.0.113.9, 198.51.100.1"}, trusted, "198.51.100.1"},
		{"trusted hops skipped", "10.0.0.1:4000", []string{"203.0.113.9, 198.51.100.1, 192.168.1.1, 10.2.3.4"}, trusted, "198.51.100.1"},
		{"header lines read in order", "10.0.0.1:4000", []string{"203.0.113.9", "198.51.100.1, 10.2.3.4"}, trusted, "198.51.100.1"},
		{"all hops trusted: the left-most", "10.0.0.1:4000", []string{"10.9.9.9, 10.2.3.4"}, trusted, "10.9.9.9"},
		{"spaces and no spaces", "10.0.0.1:4000", []string{" 198.51.100.1 ,10.2.3.4"}, trusted, "198.51.100.1"},
		{"malformed right-most", "10.0.0.1:4000", []string{"198.51.100.1, garbage"}, trusted, "10.0.0.1"},
		{"malformed behind a trusted hop", "10.0.0.1:4000", []string{"garbage, 10.2.3.4"}, trusted, "10.0.0.1"},
		{"malformed left of the client is never read", "10.0.0.1:4000", []string{"garbage, 198.51.100.1"}, trusted, "198.51.100.1"},
		{"empty entry", "10.0.0.1:4000", []string{"198.51.100.1,,"}, trusted, "10.0.0.1"},
		{"empty header", "10.0.0.1:4000", []string{""}, trusted, "10.0.0.1"},
		{"hostname", "10.0.0.1:4000", []string{"client.example"}, trusted, "10.0.0.1"},
		{"CIDR is no address", "10.0.0.1:4000", []string{"198.51.100.0/24"}, trusted, "10.0.0.1"},
		{"entry with port", "10.0.0.1:4000", []string{"198.51.100.1:4711"}, trusted, "198.51.100.1"},
		{"IPv6 entry with port", "10.0.0.1:4000", []string{"[2001:db8:2::9]:443"}, trusted, "2001:db8:2::9"},
		{"IPv6 peer and entry", "[2001:db8:1::2]:5000", []string{"2001:db8:2::9, 2001:db8:1::7"}, trusted, "2001:db8:2::9"},
		{"IPv4-mapped entry", "10.0.0.1:4000", []string{"::ffff:198.51.100.1"}, trusted, "198.51.100.1"},
		{"IPv4-mapped trusted hop", "10.0.0.1:4000", []string{"198.51.100.1, ::ffff:10.2.3.4"}, trusted, "198.51.100.1"},
		{"IPv4-mapped peer", "[::ffff:10.0.0.1]:4000", []string{"198.51.100.1"}, trusted, "198.51.100.1"},
		{"peer without port", "10.0.0.1", []string{"198.51.100.1"}, trusted, "198.51.100.1"},
		{"peer that is no address", "@", []string{"198.51.100.1"}, trusted, "@"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/admin/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientIP(r, tc.trusted); got != tc.want {
				t.Errorf("RemoteAddr %q, X-Forwarded-For %q: %q, want %q", tc.remote, tc.xff, got, tc.want)
			}
		})
	}
}
