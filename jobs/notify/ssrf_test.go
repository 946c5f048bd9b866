package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// CheckURL on IP literals and localhost never touches DNS, so these run
// the exported function as is. 93.184.216.34 only has to look public: it
// is checked, never connected to.
func TestCheckURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url          string
		allowPrivate bool
		blocked      bool // error wraps ErrBlockedAddress
		invalid      bool // error for another reason
	}{
		{url: "https://93.184.216.34/hooks"},
		{url: "http://93.184.216.34:8443/hooks?x=1"},
		{url: "https://[2606:2800:220:1:248:1893:25c8:1946]/"},
		{url: "http://127.0.0.1/", blocked: true},
		{url: "http://127.8.9.10:8080/", blocked: true},
		{url: "http://localhost:8080/x", blocked: true},
		{url: "http://LOCALHOST./x", blocked: true},
		{url: "http://api.localhost/", blocked: true},
		{url: "http://[::1]/", blocked: true},
		{url: "http://[::]/", blocked: true},
		{url: "http://0.0.0.0/", blocked: true},
		{url: "http://10.1.2.3/", blocked: true},
		{url: "http://172.16.0.1/", blocked: true},
		{url: "http://172.31.255.255/", blocked: true},
		{url: "http://192.168.1.1/", blocked: true},
		{url: "http://100.64.0.1/", blocked: true},
		{url: "http://100.127.255.254/", blocked: true},
		{url: "http://169.254.169.254/latest/meta-data/", blocked: true},
		{url: "http://224.0.0.1/", blocked: true},
		{url: "http://255.255.255.255/", blocked: true},
		{url: "http://[fc00::1]/", blocked: true},
		{url: "http://[fd12:3456::1]/", blocked: true},
		{url: "http://[fe80::1%25eth0]/", blocked: true},
		{url: "http://[ff02::1]/", blocked: true},
		{url: "http://[::ffff:127.0.0.1]/", blocked: true},
		{url: "http://[::ffff:7f00:1]/", blocked: true},
		{url: "http://[::ffff:10.0.0.1]/", blocked: true},
		{url: "http://[::ffff:169.254.169.254]/", blocked: true},
		{url: "http://[::127.0.0.1]/", blocked: true},
		{url: "http://[64:ff9b::a00:1]/", blocked: true},    // NAT64 of 10.0.0.1
		{url: "http://[64:ff9b::5db8:d822]/"},               // NAT64 of 93.184.216.34
		{url: "http://[2002:7f00:1::1]/", blocked: true},    // 6to4 of 127.0.0.1
		{url: "http://127.1/", blocked: true},               // numeric shorthand
		{url: "http://2130706433/", blocked: true},          // 127.0.0.1 as one number
		{url: "http://0x7f000001/", blocked: true},          // and in hex
		{url: "http://127.0.0.1/", allowPrivate: true},      // development
		{url: "http://localhost:8080/", allowPrivate: true}, // development
		{url: "ftp://93.184.216.34/", invalid: true},
		{url: "http:93.184.216.34", invalid: true},
		{url: "http:///path", invalid: true},
		{url: "/relative", invalid: true},
		{url: "http://93.184.216.34:0/", invalid: true},
		{url: "http://93.184.216.34:70000/", invalid: true},
		{url: "http://[::1", invalid: true},
		{url: "", invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			err := CheckURL(tt.url, tt.allowPrivate)
			switch {
			case tt.blocked:
				if !errors.Is(err, ErrBlockedAddress) {
					t.Errorf("err = %v, want ErrBlockedAddress", err)
				}
			case tt.invalid:
				if err == nil || errors.Is(err, ErrBlockedAddress) {
					t.Errorf("err = %v, want a validation error", err)
				}
			default:
				if err != nil {
					t.Errorf("err = %v, want none", err)
				}
			}
		})
	}
}

// fakeResolver answers from a table and fails the test for any other name,
// so host-name cases never reach real DNS.
func fakeResolver(t *testing.T, answers map[string][]netip.Addr) lookupFunc {
	return func(_ context.Context, _, host string) ([]netip.Addr, error) {
		addrs, ok := answers[host]
		if !ok {
			if t != nil {
				t.Errorf("unexpected lookup of %q", host)
			}
			return nil, errors.New("no such host")
		}
		return addrs, nil
	}
}

func TestCheckURLResolvesNames(t *testing.T) {
	t.Parallel()
	public := netip.MustParseAddr("93.184.216.34")
	lookup := fakeResolver(t, map[string][]netip.Addr{
		"hooks.shop.example": {public, netip.MustParseAddr("2606:2800:220:1:248:1893:25c8:1946")},
		"mixed.example":      {public, netip.MustParseAddr("10.0.0.7")},
		"metadata.example":   {netip.MustParseAddr("169.254.169.254")},
		"mapped.example":     {netip.MustParseAddr("::ffff:127.0.0.1")},
		"empty.example":      {},
	})
	tests := []struct {
		host    string
		blocked bool
		invalid bool
	}{
		{host: "hooks.shop.example"},
		{host: "mixed.example", blocked: true}, // any internal address refuses the name
		{host: "metadata.example", blocked: true},
		{host: "mapped.example", blocked: true},
		{host: "empty.example", invalid: true},
		{host: "localhost", blocked: true}, // decided without a lookup
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			t.Parallel()
			err := checkURL(context.Background(), "https://"+tt.host+"/hook", false, lookup)
			switch {
			case tt.blocked:
				if !errors.Is(err, ErrBlockedAddress) {
					t.Errorf("err = %v, want ErrBlockedAddress", err)
				}
			case tt.invalid:
				if err == nil || errors.Is(err, ErrBlockedAddress) {
					t.Errorf("err = %v, want a resolution error", err)
				}
			default:
				if err != nil {
					t.Errorf("err = %v", err)
				}
			}
		})
	}
}

func TestDialControl(t *testing.T) {
	t.Parallel()
	tests := []struct {
		network, address string
		ok               bool
	}{
		{network: "tcp4", address: "93.184.216.34:443", ok: true},
		{network: "tcp6", address: "[2606:2800:220:1:248:1893:25c8:1946]:443", ok: true},
		{network: "tcp4", address: "127.0.0.1:80"},
		{network: "tcp6", address: "[::1]:80"},
		{network: "tcp6", address: "[::ffff:127.0.0.1]:80"},
		{network: "tcp6", address: "[fe80::1%eth0]:80"},
		{network: "tcp4", address: "169.254.169.254:80"},
		{network: "udp4", address: "93.184.216.34:53"},
		{network: "tcp4", address: "not-an-address"},
	}
	for _, tt := range tests {
		t.Run(tt.network+" "+tt.address, func(t *testing.T) {
			t.Parallel()
			err := dialControl(tt.network, tt.address, nil)
			if tt.ok != (err == nil) {
				t.Errorf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBlockedAddress) {
				t.Errorf("err = %v does not wrap ErrBlockedAddress", err)
			}
		})
	}
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://93.184.216.34/x", "http://127.0.0.1/", "http://[::ffff:127.0.0.1]/",
		"http://hooks.shop.example:8080/a?b#c", "http://localhost/", "http://2130706433/",
		"http://[fe80::1%25en0]/", "http://[64:ff9b::a00:1]/", "ftp://x", "%zz", "http://u:p@h/",
	} {
		f.Add(s)
	}
	// Every name resolves to one public address, so what decides is the
	// URL's own form; nothing here reaches the network.
	public := []netip.Addr{netip.MustParseAddr("93.184.216.34")}
	lookup := func(context.Context, string, string) ([]netip.Addr, error) { return public, nil }
	f.Fuzz(func(t *testing.T, raw string) {
		err := checkURL(context.Background(), raw, false, lookup)
		errPrivate := checkURL(context.Background(), raw, true, lookup)
		if err == nil && errPrivate != nil {
			t.Fatalf("%q passes the strict check but not the lenient one: %v", raw, errPrivate)
		}
		if err != nil {
			return
		}
		u, perr := parseTarget(raw)
		if perr != nil {
			t.Fatalf("%q passed but does not parse: %v", raw, perr)
		}
		if !strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https") {
			t.Fatalf("%q passed with scheme %q", raw, u.Scheme)
		}
		if a, perr := netip.ParseAddr(u.Hostname()); perr == nil && blockedAddr(a) {
			t.Fatalf("%q passed with internal address %s", raw, a)
		}
	})
}

// A lookup that failed for now is ErrLookupUnavailable (the request may be
// retried); a name that does not exist or resolves to a blocked address
// is a validation error, and never ErrLookupUnavailable.
func TestCheckURLLookupFailures(t *testing.T) {
	t.Parallel()
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name        string
		ctx         context.Context
		err         error
		addrs       []netip.Addr
		unavailable bool
		blocked     bool
	}{
		{name: "timeout", err: &net.DNSError{Err: "i/o timeout", Name: "h.example", IsTimeout: true}, unavailable: true},
		{name: "servfail", err: &net.DNSError{Err: "server misbehaving", Name: "h.example", IsTemporary: true}, unavailable: true},
		{name: "deadline", err: context.DeadlineExceeded, unavailable: true},
		{name: "dns error wrapping the deadline", err: fmt.Errorf("lookup: %w", &net.DNSError{Err: "lookup timed out", UnwrapErr: context.DeadlineExceeded}), unavailable: true},
		{name: "caller gave up", ctx: expired, err: errors.New("operation was canceled"), unavailable: true},
		{name: "net timeout", err: &net.OpError{Op: "read", Net: "udp", Err: timeoutError{}}, unavailable: true},
		{name: "no such host", err: &net.DNSError{Err: "no such host", Name: "h.example", IsNotFound: true}},
		{name: "no such host, temporary elsewhere", err: &net.DNSError{Err: "no such host", Name: "h.example", IsNotFound: true, IsTemporary: true}},
		{name: "other dns error", err: &net.DNSError{Err: "cannot unmarshal DNS message", Name: "h.example"}},
		{name: "plain error", err: errors.New("lookup failed")},
		{name: "no addresses", addrs: []netip.Addr{}},
		{name: "blocked", addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, blocked: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			lookup := func(context.Context, string, string) ([]netip.Addr, error) { return tt.addrs, tt.err }
			err := checkURL(ctx, "https://h.example/hook", false, lookup)
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, ErrLookupUnavailable); got != tt.unavailable {
				t.Errorf("err = %v: ErrLookupUnavailable %v, want %v", err, got, tt.unavailable)
			}
			if got := errors.Is(err, ErrBlockedAddress); got != tt.blocked {
				t.Errorf("err = %v: ErrBlockedAddress %v, want %v", err, got, tt.blocked)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("err = %v does not wrap the resolver's %v", err, tt.err)
			}
		})
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
