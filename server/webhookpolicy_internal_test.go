package server

import "testing"

// The dialer checks the address it dials, whatever name resolved to it:
// an IPv6 zone id, an IPv4-mapped or NAT64 form hides nothing, and an
// address it cannot read is refused.
func TestDialControlChecksThePolicy(t *testing.T) {
	p, err := DefaultWebhookPolicy().compile()
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string][2]bool{ // refused for an admin, for another
		"169.254.169.254:80":          {true, true},
		"[::ffff:169.254.169.254]:80": {true, true},
		"[64:ff9b::a9fe:a9fe]:80":     {true, true},
		"[fd00:ec2::254]:80":          {true, true},
		"0.0.0.0:80":                  {true, true},
		"[::]:80":                     {true, true},
		"224.0.0.1:80":                {true, true},
		"[fe80::1%eth0]:8080":         {false, true},
		"[fe80::1%25eth0]:8080":       {false, true},
		"[fe80::1]:80":                {false, true},
		"169.254.10.1:80":             {false, true},
		"10.1.2.3:443":                {false, true},
		"[::ffff:10.1.2.3]:443":       {false, true},
		"100.64.1.1:80":               {false, true},
		"[fd12:3456::1]:80":           {false, true},
		"127.0.0.1:9000":              {false, false},
		"[::1]:80":                    {false, false},
		"93.184.215.14:443":           {false, false},
		"[2606:2800:21f:cb07::1]:443": {false, false},
		"not-an-address:80":           {true, true},
	} {
		for i, admin := range []bool{true, false} {
			if err := p.dialControl(admin)("tcp", addr, nil); (err != nil) != want[i] {
				t.Errorf("dial %s (admin %v): %v, want refused %v", addr, admin, err, want[i])
			}
		}
	}
}
