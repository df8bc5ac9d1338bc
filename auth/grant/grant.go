// Package grant is the one table of which grant takes which client
// authentication, and which secret, key, assertion or certificate each
// needs: config checks proxy.yaml against it (config/token.go, naming
// the key and what to write), and auth builds a token source's client by
// it (auth/clientsetup.go). Each says in its own words what is missing;
// the rules are here.
//
// It imports nothing, so that config can read it without importing auth.
// A new grant or client authentication method is a row here, a type in
// auth, and the keys config checks for it.
package grant

// The grant types, as written in grant_type.
const (
	ClientCredentials = "client_credentials"                              // RFC 6749 4.4
	RefreshToken      = "refresh_token"                                   // RFC 6749 6
	Password          = "password"                                        // RFC 6749 4.3
	JWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"     // RFC 7523 2.1
	TokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange" // RFC 8693 2.1
)

// The client authentication methods, as written in auth_method (RFC
// 7591 2's token_endpoint_auth_method).
const (
	SecretPost    = "client_secret_post"  // RFC 6749 2.3.1, in the body
	SecretBasic   = "client_secret_basic" // RFC 6749 2.3.1, as HTTP Basic
	SecretJWT     = "client_secret_jwt"   // RFC 7523 2.2, signed with the secret
	PrivateKeyJWT = "private_key_jwt"     // RFC 7523 2.2, signed with a key or written by the platform
	TLSClientAuth = "tls_client_auth"     // RFC 8705 2.1
	None          = "none"                // RFC 6749 2.1, a public client
)

// Secret says what a client authentication method does with the client
// secret.
type Secret int

const (
	// SecretIfGiven sends the secret when there is one; a grant whose
	// NeedsSecret is set requires it.
	SecretIfGiven Secret = iota
	// SecretSigns signs the client's assertions with the secret, which
	// is required.
	SecretSigns
	// SecretNone sends no secret: one given is a mistake.
	SecretNone
)

// Method is what a client authentication method takes.
type Method struct {
	Secret Secret
	// Assertion: the method presents a client assertion, signed here
	// with a private key or written by the platform to a file; one of
	// the two is required.
	Assertion bool
	// ClientCertificate: the method presents the client certificate of
	// the token endpoint's TLS, which is required.
	ClientCertificate bool
}

// Methods are the client authentication methods by name. "" is a grant's
// default, which sends the secret as client_secret_post does.
var Methods = map[string]Method{
	"":            {},
	SecretPost:    {},
	SecretBasic:   {},
	SecretJWT:     {Secret: SecretSigns},
	PrivateKeyJWT: {Secret: SecretNone, Assertion: true},
	TLSClientAuth: {Secret: SecretNone, ClientCertificate: true},
	None:          {Secret: SecretNone},
}

// Grant is what a grant type takes beside its client's authentication.
type Grant struct {
	// NeedsSecret: the client is confidential by the grant's definition,
	// so a method that sends the secret if given must be given one.
	NeedsSecret bool
	// Assertion: the grant presents an assertion of its own (RFC 7523
	// 2.1): a file the platform writes, or else one signed here with the
	// private key; one of the two is required.
	Assertion bool
	// SubjectToken: the grant exchanges a subject token, read from a file
	// the platform writes, which is required.
	SubjectToken bool
}

// Grants are the grant types by name.
var Grants = map[string]Grant{
	ClientCredentials: {NeedsSecret: true},
	RefreshToken:      {},
	Password:          {},
	JWTBearer:         {Assertion: true},
	TokenExchange:     {SubjectToken: true},
}

// KeySignsGrant says whether the private key signs the grant's own
// assertion: for a grant that presents one, when no assertion file is
// given.
func KeySignsGrant(grantType string, assertionFile bool) bool {
	return Grants[grantType].Assertion && !assertionFile
}

// KeyUsed says whether a private key file is used: to sign the client's
// assertions, or the grant's.
func KeyUsed(grantType, method string, assertionFile bool) bool {
	return Methods[method].Assertion || KeySignsGrant(grantType, assertionFile)
}
