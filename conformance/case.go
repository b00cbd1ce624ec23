package conformance

import (
	"context"
	"slices"
	"sort"
	"strings"
)

// Level is how much weight a case carries in a report.
type Level string

// Levels. [LevelMust] covers the checklist's MUST, MUST NOT, REQUIRED,
// implied, defined and BCP MUST requirements; a missing MUST feature makes
// [Report.Failed] true. [LevelShould] findings are reported as warnings.
// [LevelPolicy] cases go beyond the RFC minimum: their findings fail in the
// report, and an accepted attack among them fails the run too.
// [LevelRecord] cases log what the target does; they fail only on a 5xx or
// an echoed credential. An accepted attack makes [Report.Failed] true at
// any level (see [Tier]).
const (
	LevelMust   Level = "MUST"
	LevelShould Level = "SHOULD"
	LevelPolicy Level = "policy"
	LevelRecord Level = "record"
)

// Role is the part of the target a case talks to.
type Role string

// Roles.
const (
	RoleTokenEndpoint Role = "token-endpoint"
	RoleResource      Role = "resource"
	RoleMetadata      Role = "metadata"
	RoleIntrospection Role = "introspection"
)

// Capability is a precondition a case needs from the [Target]. A case whose
// capabilities the target lacks is skipped with the reason.
type Capability uint32

// Capabilities.
const (
	// CapDPoP: the token endpoint issues DPoP-bound tokens (assumed unless
	// DisableDPoP is set or the profile is ProfileMTLS).
	CapDPoP Capability = 1 << iota
	// CapMTLS: Target.ClientCert is set, the profile is not ProfileDPoP,
	// and the token endpoint issues certificate-bound tokens.
	CapMTLS
	// CapIssuerKey: Target.IssuerKey holds the issuer's private signing key.
	CapIssuerKey
	// CapSecondResource: Target.SecondResource is set.
	CapSecondResource
	// CapNonce: Target.NonceRequired is true (the resource server demands
	// nonces).
	CapNonce
	// CapTrustedProxy: Target.TrustedProxyResource is set.
	CapTrustedProxy
	// CapSecondCert: Target.SecondClientCert is set.
	CapSecondCert
	// CapMetadata: Target.MetadataURL is set.
	CapMetadata
	// CapIntrospection: Target.IntrospectionEndpoint is set.
	CapIntrospection
	// CapTokenNonce: Target.TokenEndpointNonceRequired is true.
	CapTokenNonce
	// CapRefreshGrant: Target.RefreshGrant is set (a public client can
	// obtain refresh tokens).
	CapRefreshGrant
	// CapIntrospectionProxy: Target.IntrospectionProxy and
	// Target.IntrospectionEndpoint are set (the suite observes the
	// resource server's introspection calls).
	CapIntrospectionProxy
	// CapAuthorization: Target.Authorization is set (the suite can obtain
	// authorization codes without a browser).
	CapAuthorization
)

var capNames = []struct {
	c    Capability
	name string
	hint string
}{
	{CapDPoP, "dpop", "needs a token endpoint and a resource with DPoP enabled"},
	{CapMTLS, "mtls", "needs a client certificate (--cert/--key)"},
	{CapIssuerKey, "issuer-key", "needs the issuer's private signing key (--issuer-key)"},
	{CapSecondResource, "second-resource", "needs a second resource URL sharing the issuer (--second-resource)"},
	{CapNonce, "nonce", "needs a target that requires DPoP nonces (--nonce-required)"},
	{CapTrustedProxy, "trusted-proxy", "needs a resource URL reachable as a trusted proxy (--trusted-proxy-resource)"},
	{CapSecondCert, "second-cert", "needs a second client certificate (--second-cert/--second-key)"},
	{CapMetadata, "metadata", "needs the metadata URL (--metadata)"},
	{CapIntrospection, "introspection", "needs introspection endpoint and credentials (--introspection)"},
	{CapTokenNonce, "token-nonce", "needs a token endpoint that requires DPoP nonces (--token-nonce-required)"},
	{CapRefreshGrant, "refresh-grant", "needs a test grant by which a public client obtains refresh tokens (--refresh-client-id, --refresh-grant-type, --refresh-param)"},
	{CapIntrospectionProxy, "introspection-proxy", "needs the suite's recording introspection proxy (--introspection-proxy, with --introspection) as the resource server's introspection endpoint"},
	{CapAuthorization, "authorization", "needs a non-interactive authorization endpoint of a test deployment (--authorization-endpoint, --redirect-uri)"},
}

// String lists the capability names joined by "+".
func (c Capability) String() string {
	var parts []string
	for _, n := range capNames {
		if c&n.c != 0 {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, "+")
}

// Group is a section of the checklist.
type Group string

// Groups, named by the checklist's section letters.
const (
	GroupA   Group = "A" // DPoP proofs at a resource server
	GroupB   Group = "B" // DPoP at the token endpoint and issuer
	GroupC   Group = "C" // challenges, error responses, DPoP-Nonce
	GroupD   Group = "D" // mTLS client authentication
	GroupE   Group = "E" // certificate-bound access tokens
	GroupF   Group = "F" // RFC 9440 Client-Cert forwarding
	GroupG   Group = "G" // access-token validation, introspection, metadata
	GroupH   Group = "H" // thumbprints
	GroupADV Group = "ADV"
)

var groupTitles = map[Group]string{
	GroupA:   "A. DPoP proofs at a resource server",
	GroupB:   "B. DPoP at the token endpoint and issuer",
	GroupC:   "C. Challenges, error responses and DPoP-Nonce",
	GroupD:   "D. mTLS client authentication",
	GroupE:   "E. Certificate-bound access tokens",
	GroupF:   "F. RFC 9440 Client-Cert forwarding",
	GroupG:   "G. Access-token validation, introspection, metadata",
	GroupH:   "H. Thumbprints",
	GroupADV: "ADV. Adversarial cases",
}

var groupOrder = []Group{GroupA, GroupB, GroupC, GroupD, GroupE, GroupF, GroupG, GroupH, GroupADV}

// Title is the checklist's heading for the group.
func (g Group) Title() string {
	if t, ok := groupTitles[g]; ok {
		return t
	}
	return string(g)
}

// Case describes one conformance case. Cases are values; [Cases] returns the
// catalogue and [Run] executes it.
type Case struct {
	// ID is the checklist requirement id, e.g. "DPOP-RS-05" or "ADV-31".
	ID string `json:"id"`
	// Title is a one-line summary of the requirement.
	Title string `json:"title"`
	// Section is the RFC section, e.g. "RFC 9449 §4.3".
	Section string `json:"section"`
	// Level decides how a failure counts.
	Level Level `json:"level"`
	// Role is the part of the target the case talks to.
	Role Role `json:"role"`
	// Group is the checklist section.
	Group Group `json:"group"`
	// Needs lists the capabilities the case needs from the target.
	Needs Capability `json:"-"`
	// Expect says what the case sends and what it expects back.
	Expect string `json:"expect"`

	run func(context.Context, *run) verdict
}

// catalogue is every case. Each cases_*.go file declares its cases as
// tables (var casesX = []Case{...}), and the catalogue joins the tables
// here, in one place: a new table is added to this list, nowhere else
// (TestEveryTableInCatalogue fails for a table left out), and
// testdata/catalogue.txt is regenerated with go test -update.
// The list's order is the order of the files; it does not decide the
// report order, which is by group, then id (see [Cases]). A case's run
// function must not refer to the catalogue (nor call [Cases] or [Run]):
// that would be a package initialization cycle, which the compiler
// refuses.
var catalogue = slices.Concat(
	casesA,
	casesADV,
	casesThumbprints,
	casesB,
	casesC,
	casesClientCert,
	casesTokenValidation,
	casesMTLS,
	casesMTLSTrust,
	casesIntrospection,
	casesAuthorizationCode,
	casesJWKSURI,
)

// Cases returns the catalogue in report order (by group, then id). The
// returned slice is a copy; callers may modify it.
func Cases() []Case {
	out := make([]Case, len(catalogue))
	copy(out, catalogue)
	sortCases(out)
	return out
}

func sortCases(cs []Case) {
	gi := map[Group]int{}
	for i, g := range groupOrder {
		gi[g] = i
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].Group != cs[j].Group {
			return gi[cs[i].Group] < gi[cs[j].Group]
		}
		return idLess(cs[i].ID, cs[j].ID)
	})
}

// idLess orders ids by prefix, then by their trailing number.
func idLess(a, b string) bool {
	pa, na := splitID(a)
	pb, nb := splitID(b)
	if pa != pb {
		return pa < pb
	}
	return na < nb
}

func splitID(id string) (string, int) {
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		return id, 0
	}
	n := 0
	for _, r := range id[i+1:] {
		if r < '0' || r > '9' {
			return id, 0
		}
		n = n*10 + int(r-'0')
	}
	return id[:i], n
}

// Select reports whether a case id matches one of the patterns. A pattern
// matches an id exactly, or as a prefix ("DPOP-RS", "ADV-"), or names a
// group ("A", "ADV", "group:E"). Matching is case-insensitive. No patterns
// select everything.
func (c Case) Select(patterns []string) bool {
	if len(patterns) == 0 {
		return true
	}
	id := strings.ToUpper(c.ID)
	for _, p := range patterns {
		p = strings.ToUpper(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		if g, ok := strings.CutPrefix(p, "GROUP:"); ok {
			if Group(g) == c.Group {
				return true
			}
			continue
		}
		if len(p) == 1 && Group(p) == c.Group {
			return true
		}
		if id == p || strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}
