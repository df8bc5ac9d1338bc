package grant

import "testing"

// The table's rows, as RFC 6749, 7523 and 8705 have them: config's
// problems and auth's errors both follow from these.
func TestMethods(t *testing.T) {
	want := map[string]Method{
		"":            {Secret: SecretIfGiven},
		SecretPost:    {Secret: SecretIfGiven},
		SecretBasic:   {Secret: SecretIfGiven},
		SecretJWT:     {Secret: SecretSigns},
		PrivateKeyJWT: {Secret: SecretNone, Assertion: true},
		TLSClientAuth: {Secret: SecretNone, ClientCertificate: true},
		None:          {Secret: SecretNone},
	}
	if len(Methods) != len(want) {
		t.Fatalf("%d methods, want %d: %v", len(Methods), len(want), Methods)
	}
	for name, m := range want {
		if got, ok := Methods[name]; !ok || got != m {
			t.Errorf("Methods[%q] = %+v, %v; want %+v", name, got, ok, m)
		}
	}
	if _, ok := Methods["client_secret"]; ok {
		t.Error("a method that is not one")
	}
}

func TestGrants(t *testing.T) {
	want := map[string]Grant{
		ClientCredentials: {NeedsSecret: true},
		RefreshToken:      {},
		Password:          {},
		JWTBearer:         {Assertion: true},
		TokenExchange:     {SubjectToken: true},
	}
	if len(Grants) != len(want) {
		t.Fatalf("%d grants, want %d: %v", len(Grants), len(want), Grants)
	}
	for name, g := range want {
		if got, ok := Grants[name]; !ok || got != g {
			t.Errorf("Grants[%q] = %+v, %v; want %+v", name, got, ok, g)
		}
	}
}

// The private key signs the client's assertions (private_key_jwt), and
// the jwt-bearer grant's own when it is given no assertion file.
func TestKeyUsed(t *testing.T) {
	for _, tc := range []struct {
		grant, method       string
		assertionFile       bool
		signsGrant, keyUsed bool
	}{
		{ClientCredentials, SecretPost, false, false, false},
		{ClientCredentials, PrivateKeyJWT, false, false, true},
		{ClientCredentials, SecretJWT, false, false, false},
		{JWTBearer, "", false, true, true},
		{JWTBearer, "", true, false, false},
		{JWTBearer, PrivateKeyJWT, true, false, true},
		{TokenExchange, None, false, false, false},
		{"not a grant", "not a method", false, false, false},
	} {
		if got := KeySignsGrant(tc.grant, tc.assertionFile); got != tc.signsGrant {
			t.Errorf("KeySignsGrant(%s, %v) = %v", tc.grant, tc.assertionFile, got)
		}
		if got := KeyUsed(tc.grant, tc.method, tc.assertionFile); got != tc.keyUsed {
			t.Errorf("KeyUsed(%s, %s, %v) = %v", tc.grant, tc.method, tc.assertionFile, got)
		}
	}
}
