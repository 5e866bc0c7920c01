package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// WebhookAccess says who may point a webhook at a range of addresses.
type WebhookAccess string

// The accesses of a WebhookPolicy range.
const (
	// AccessEveryone lets every token's webhooks reach the range.
	AccessEveryone WebhookAccess = "everyone"
	// AccessAdmin lets the webhooks of admins reach the range (and those
	// of the configuration file, and every webhook of an open server).
	AccessAdmin WebhookAccess = "admin"
	// AccessNobody lets no webhook reach the range.
	AccessNobody WebhookAccess = "nobody"
)

// WebhookPolicy says which addresses webhook deliveries may connect to,
// so that a token holder cannot use webhooks to reach (or scan) the
// server's own machine and network. It is checked twice: on a
// subscription's endpoint when it is put, if the endpoint's host is an
// address (403 forbidden, or 400 for an address no policy opens), and on
// every address a delivery dials, after DNS resolution, so that a name
// resolving to a refused address gets nowhere. Who a webhook delivers as
// is decided at each delivery: as an admin when its owner holds an admin
// token (or it has no owner: the configuration file's, an open server's).
//
// Addresses are taken without their IPv6 zone, IPv4-mapped IPv6
// addresses as the IPv4 address, and NAT64 addresses (64:ff9b::/96) as
// the IPv4 address they carry. Unspecified (0.0.0.0, ::, which reach the
// local machine), multicast and broadcast addresses are never reached.
// Zero fields take the defaults (DefaultWebhookPolicy).
type WebhookPolicy struct {
	// Loopback is who may reach 127.0.0.0/8 and ::1: a plugin on the
	// server's machine. Default AccessEveryone.
	Loopback WebhookAccess `json:"loopback,omitempty" yaml:"loopback,omitempty"`
	// Private is who may reach the private ranges: 10.0.0.0/8,
	// 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10 (carrier-grade NAT),
	// the link-local 169.254.0.0/16 and fe80::/10, the unique local
	// fc00::/7 and the site-local fec0::/10. Default AccessAdmin.
	Private WebhookAccess `json:"private,omitempty" yaml:"private,omitempty"`
	// Allow lists prefixes ("10.1.0.0/16", or one address) that every
	// webhook may reach, whatever Loopback and Private say. It is the
	// only way to reach a cloud metadata address (MetadataAddresses):
	// a prefix that holds it must be listed. Empty by default.
	Allow []string `json:"allow,omitempty" yaml:"allow,omitempty"`
}

// DefaultWebhookPolicy returns the policy a server applies unless told
// otherwise: loopback for everyone, private ranges for admins, metadata
// addresses for no one.
func DefaultWebhookPolicy() WebhookPolicy {
	return WebhookPolicy{Loopback: AccessEveryone, Private: AccessAdmin}
}

// MetadataAddresses are the cloud metadata and credential services'
// addresses, which no webhook reaches unless WebhookPolicy.Allow holds
// them: 169.254.169.254 (AWS, Azure, GCP, Oracle and others), 169.254.170.2
// and 169.254.170.23 (AWS container and pod credentials), 100.100.100.200
// (Alibaba Cloud), fd00:ec2::254 and fd00:ec2::23 (AWS over IPv6).
var MetadataAddresses = []string{"169.254.169.254", "169.254.170.2", "169.254.170.23", "100.100.100.200", "fd00:ec2::254", "fd00:ec2::23"}

// addrClass is what kind of address a webhook would reach.
type addrClass int

const (
	classPublic addrClass = iota
	classLoopback
	classPrivate
	classMetadata
	classNever // unspecified, multicast, broadcast
)

var (
	privatePrefixes = mustPrefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
		"169.254.0.0/16", "fe80::/10", "fc00::/7", "fec0::/10")
	neverPrefixes = mustPrefixes("0.0.0.0/8", "255.255.255.255/32")
	nat64         = netip.MustParsePrefix("64:ff9b::/96")
)

func mustPrefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}

// canonical is a without its zone, an IPv4-mapped address as IPv4, and a
// NAT64 address as the IPv4 address it carries.
func canonical(a netip.Addr) netip.Addr {
	a = a.WithZone("").Unmap()
	if a.Is6() && nat64.Contains(a) {
		b := a.As16()
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	return a
}

func classify(a netip.Addr) addrClass {
	switch {
	case a.IsUnspecified() || a.IsMulticast() || contains(neverPrefixes, a):
		return classNever
	case isMetadata(a):
		return classMetadata
	case a.IsLoopback():
		return classLoopback
	case contains(privatePrefixes, a):
		return classPrivate
	}
	return classPublic
}

func isMetadata(a netip.Addr) bool {
	for _, m := range MetadataAddresses {
		if netip.MustParseAddr(m) == a {
			return true
		}
	}
	return false
}

func contains(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Validate reports what New would refuse in p: an access other than
// everyone, admin or nobody, or an Allow entry that is neither a prefix
// nor an address.
func (p WebhookPolicy) Validate() error {
	_, err := p.compile()
	return err
}

// webhookPolicy is a WebhookPolicy checked and parsed.
type webhookPolicy struct {
	loopback, private WebhookAccess
	allow             []netip.Prefix
}

func (p WebhookPolicy) compile() (webhookPolicy, error) {
	d := DefaultWebhookPolicy()
	out := webhookPolicy{loopback: p.Loopback, private: p.Private}
	if out.loopback == "" {
		out.loopback = d.Loopback
	}
	if out.private == "" {
		out.private = d.Private
	}
	for _, a := range []WebhookAccess{out.loopback, out.private} {
		switch a {
		case AccessEveryone, AccessAdmin, AccessNobody:
		default:
			return out, fmt.Errorf("webhook policy: access %q: want everyone, admin or nobody", a)
		}
	}
	for _, s := range p.Allow {
		s = strings.TrimSpace(s)
		pr, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				return out, fmt.Errorf("webhook policy: allow %q: want a prefix such as 10.1.0.0/16, or an address", s)
			}
			pr = netip.PrefixFrom(a, a.BitLen())
		}
		if a := pr.Addr(); a.Is4In6() && pr.Bits() >= 96 {
			pr = netip.PrefixFrom(a.Unmap(), pr.Bits()-96)
		}
		out.allow = append(out.allow, pr.Masked())
	}
	return out, nil
}

// refusal is a policy's refusal of an address. Its message does not name
// the address: at dial that is what a name resolved to, which the
// webhook's owner need not learn. never is set when no rights would open
// the address (only the allow list may).
type refusal struct {
	msg   string
	never bool
}

func (r *refusal) Error() string { return r.msg }

// check returns nil when a webhook (of an admin, or not) may reach a, or
// a *refusal saying why not.
func (p webhookPolicy) check(a netip.Addr, admin bool) error {
	a = canonical(a)
	class := classify(a)
	if class == classNever {
		return &refusal{msg: "webhooks may not reach unspecified, multicast or broadcast addresses", never: true}
	}
	if contains(p.allow, a) {
		return nil
	}
	var access WebhookAccess
	switch class {
	case classPublic:
		return nil
	case classMetadata:
		return &refusal{msg: "webhooks may not reach a cloud metadata address unless the server's webhook policy allows it", never: true}
	case classLoopback:
		access = p.loopback
	case classPrivate:
		access = p.private
	}
	kind := map[addrClass]string{classLoopback: "loopback", classPrivate: "private"}[class]
	switch {
	case access == AccessEveryone, access == AccessAdmin && admin:
		return nil
	case access == AccessAdmin:
		return &refusal{msg: fmt.Sprintf("the server's webhook policy lets only admins' webhooks reach %s addresses", kind)}
	}
	return &refusal{msg: fmt.Sprintf("the server's webhook policy lets no webhook reach %s addresses", kind)}
}

// checkEndpoint checks the host of a webhook's endpoint URL when it is an
// address (a name is checked when a delivery dials it): 403 when the
// caller's rights do not reach it, 400 when nobody's would.
func (p webhookPolicy) checkEndpoint(host string, admin bool) error {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return nil // a name
	}
	if err := p.check(a, admin); err != nil {
		var r *refusal
		if errors.As(err, &r) && r.never {
			return badRequest("endpoint", "%s (%s)", r.msg, host)
		}
		ae := newError(http.StatusForbidden, CodeForbidden, "%s (%s)", err.Error(), host)
		ae.Field = "endpoint"
		return ae
	}
	return nil
}

// dialControl refuses a connection to an address the policy does not let
// a webhook (of an admin, or not) reach. It sees the address being
// dialed, after DNS resolution; an address it cannot read is refused.
func (p webhookPolicy) dialControl(admin bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return &refusal{msg: "webhooks may not reach " + address}
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			return &refusal{msg: "webhooks may not reach " + address}
		}
		return p.check(a, admin)
	}
}

// webhookClients are the HTTP clients of deliveries: one for webhooks that
// deliver as an admin, one for the others. Each has its own connections,
// so a connection one dialed is never used by the other.
type webhookClients struct {
	admin, other *http.Client
}

func (c webhookClients) of(admin bool) *http.Client {
	if admin {
		return c.admin
	}
	return c.other
}

// newWebhookClients returns the clients of deliveries under policy p, or
// both custom when given (WithWebhookClient).
func newWebhookClients(p webhookPolicy, custom *http.Client) webhookClients {
	if custom != nil {
		return webhookClients{admin: custom, other: custom}
	}
	return webhookClients{admin: newWebhookClient(p, true), other: newWebhookClient(p, false)}
}

// newWebhookClient returns a client whose dialer checks every address
// against p. It uses no proxy (through a proxy the policy could not see
// the address reached), keeps many idle connections per host and follows
// no redirect.
func newWebhookClient(p webhookPolicy, admin bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: p.dialControl(admin)}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		var r *refusal
		if errors.As(err, &r) {
			return nil, r // the policy's words, not the dialer's
		}
		return c, err
	}
	tr.MaxIdleConns = 1024
	tr.MaxIdleConnsPerHost = 256
	tr.IdleConnTimeout = 90 * time.Second
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
