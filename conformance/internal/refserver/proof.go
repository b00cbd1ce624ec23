package refserver

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
)

// nonces issues stateless nonces: random || time slot || HMAC(key, id ||
// random || slot), valid for the current and the previous slot.
type nonces struct {
	id  string
	key []byte
	// perSlot issues the same nonce for a whole slot (SlotNonce).
	perSlot bool
}

const nonceSlot = 30 * time.Second

func newNonces(id string) (*nonces, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	return &nonces{id: id, key: k}, nil
}

func (n *nonces) mac(r []byte, slot uint64) []byte {
	m := hmac.New(sha256.New, n.key)
	m.Write([]byte(n.id))
	m.Write(r)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], slot)
	m.Write(b[:])
	return m.Sum(nil)[:16]
}

func (n *nonces) issue(now time.Time) string {
	slot := uint64(now.Unix() / int64(nonceSlot/time.Second))
	r := make([]byte, 16)
	if n.perSlot {
		// One nonce per slot: its random part is derived from the slot.
		copy(r, n.mac([]byte("slot"), slot))
	} else if _, err := rand.Read(r); err != nil {
		panic("refserver: crypto/rand failed")
	}
	buf := append([]byte{}, r...)
	buf = binary.BigEndian.AppendUint64(buf, slot)
	buf = append(buf, n.mac(r, slot)...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

func (n *nonces) valid(v string, now time.Time) bool {
	b, err := base64.RawURLEncoding.Strict().DecodeString(v)
	if err != nil || len(b) != 40 {
		return false
	}
	slot := binary.BigEndian.Uint64(b[16:24])
	cur := uint64(now.Unix() / int64(nonceSlot/time.Second))
	if slot != cur && slot+1 != cur {
		return false
	}
	return hmac.Equal(n.mac(b[:16], slot), b[24:])
}

// issueNonce returns a fresh nonce from n (a bare counter under the
// PredictableNonce mutation).
func (s *Servers) issueNonce(n *nonces, now time.Time) string {
	if s.has(PredictableNonce) {
		return strconv.FormatInt(s.counter.Add(1), 10)
	}
	if s.has(NonceOutsideNQCHAR) {
		return "n " + n.issue(now)
	}
	return n.issue(now)
}

// checkNonce validates a nonce issued by n.
func (s *Servers) checkNonce(n *nonces, v string, now time.Time) bool {
	if s.has(PredictableNonce) {
		c, err := strconv.ParseInt(v, 10, 64)
		return err == nil && c > 0 && c <= s.counter.Load()
	}
	if s.has(NonceOutsideNQCHAR) {
		v = strings.TrimPrefix(v, "n ")
	}
	return n.valid(v, now)
}

// proofError is a failed proof check: code is invalid_dpop_proof or
// use_dpop_nonce.
type proofError struct {
	code string
	desc string
}

func (e *proofError) Error() string { return e.code + ": " + e.desc }

func bad(format string, a ...any) *proofError {
	return &proofError{code: "invalid_dpop_proof", desc: fmt.Sprintf(format, a...)}
}

// proofCheck is what a proof must match.
type proofCheck struct {
	method string
	url    string // the request URL as the server sees it (with query)
	token  string // access token; "" at the token endpoint
	nonce  func(string) bool
	replay *replay
	// atAS marks the token endpoint (where the signature mutation applies).
	atAS bool
	// noIatWindow takes freshness from the nonce alone.
	noIatWindow bool
}

const maxProof = 8 << 10

// noDuplicates walks a JSON object and refuses repeated member names at any
// depth, trailing data, and non-object top levels.
func noDuplicates(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var walk func(depth int) error
	walk = func(depth int) error {
		if depth > 32 {
			return errors.New("too deep")
		}
		t, err := dec.Token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				name, _ := k.(string)
				if seen[name] {
					return errors.New("duplicate member")
				}
				seen[name] = true
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for dec.More() {
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	if len(bytes.TrimSpace(b)) == 0 || bytes.TrimSpace(b)[0] != '{' {
		return errors.New("not an object")
	}
	if err := walk(0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

func isB64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// normalizeHTU applies RFC 3986 syntax- and scheme-based normalization
// (lower-case scheme and host, default port dropped, empty path as "/").
// It refuses relative URLs, userinfo, and (policy) query or fragment.
func normalizeHTU(raw string, allowQuery bool) (string, error) {
	if len(raw) > 4096 {
		return "", errors.New("too long")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", errors.New("not an http(s) URL")
	}
	if u.User != nil || u.Host == "" || u.Opaque != "" {
		return "", errors.New("userinfo or no host")
	}
	if !allowQuery && (u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(raw, "?#")) {
		return "", errors.New("query or fragment")
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	out := scheme + "://" + host + path
	if allowQuery && u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out, nil
}

var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// checkJWKMembers applies the key-encoding and key-use policy: RSA
// members without leading zero octets, "use" sig if present, "key_ops"
// including verify if present, and a JWK "alg" equal to the header's.
func checkJWKMembers(m map[string]json.RawMessage, alg string) *proofError {
	str := func(name string) (string, bool) {
		raw, ok := m[name]
		if !ok {
			return "", false
		}
		var v string
		if json.Unmarshal(raw, &v) != nil {
			return "\x00invalid", true
		}
		return v, true
	}
	if kty, _ := str("kty"); kty == "RSA" {
		for _, name := range []string{"n", "e"} {
			v, _ := str(name)
			b, err := base64.RawURLEncoding.Strict().DecodeString(v)
			if err != nil || len(b) == 0 || b[0] == 0 {
				return bad("jwk encoding")
			}
		}
	}
	if use, ok := str("use"); ok && use != "sig" {
		return bad("jwk use")
	}
	if a, ok := str("alg"); ok && a != alg {
		return bad("jwk alg")
	}
	if raw, ok := m["key_ops"]; ok {
		var ops []string
		if json.Unmarshal(raw, &ops) != nil || !slices.Contains(ops, "verify") {
			return bad("jwk key_ops")
		}
	}
	return nil
}

// verifyES256Raw checks an ES256 signature over the compact signing input
// without go-jose's header validation (used by mutants only).
func verifyES256Raw(parts []string, key any) ([]byte, error) {
	ek, ok := key.(*ecdsa.PublicKey)
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if !ok || err != nil || len(sig) != 64 {
		return nil, errors.New("signature")
	}
	d := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(ek, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return nil, errors.New("signature")
	}
	return base64.RawURLEncoding.DecodeString(parts[1])
}

func hasPrivate(members map[string]json.RawMessage) bool {
	for _, m := range privateMembers {
		if _, ok := members[m]; ok {
			return true
		}
	}
	return false
}

// verifyProof checks one DPoP proof and returns the thumbprint of its key.
func (s *Servers) verifyProof(proof string, pc proofCheck) (string, *proofError) {
	now := time.Now()
	if len(proof) > maxProof {
		return "", bad("proof too large")
	}
	if s.has(LenientProofEncoding) {
		proof = strings.TrimSuffix(strings.TrimPrefix(proof, "DPoP "), ".")
		proof = strings.NewReplacer("=", "", "+", "-", "/", "_").Replace(proof)
	}
	parts := strings.Split(proof, ".")
	if len(parts) != 3 || !isB64URL(parts[0]) || !isB64URL(parts[1]) || !isB64URL(parts[2]) {
		return "", bad("not a compact JWS")
	}
	hb, err := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	if err != nil {
		return "", bad("header encoding")
	}
	if err := noDuplicates(hb); err != nil && !s.has(NoDuplicateCheck) {
		return "", bad("header JSON")
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return "", bad("header JSON")
	}
	var typ, alg string
	if json.Unmarshal(hdr["typ"], &typ) != nil || (typ != "dpop+jwt" && !s.has(NoProofTypCheck)) {
		return "", bad("typ")
	}
	if json.Unmarshal(hdr["alg"], &alg) != nil {
		return "", bad("alg")
	}
	if _, ok := hdr["crit"]; ok && !s.has(NoCritCheck) {
		return "", bad("crit")
	}
	rawJWK, ok := hdr["jwk"]
	if !ok || len(bytes.TrimSpace(rawJWK)) == 0 || bytes.TrimSpace(rawJWK)[0] != '{' {
		return "", bad("jwk")
	}
	var members map[string]json.RawMessage
	if json.Unmarshal(rawJWK, &members) != nil {
		return "", bad("jwk")
	}
	if !s.has(PrivateJWKAccepted) && hasPrivate(members) {
		return "", bad("jwk holds private key material")
	}
	if perr := checkJWKMembers(members, alg); perr != nil && !s.has(NoJWKPolicy) {
		return "", perr
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(rawJWK); err != nil {
		return "", bad("jwk")
	}
	pub := jwk.Public()
	if !pub.Valid() {
		return "", bad("jwk")
	}
	if rk, ok := pub.Key.(*rsa.PublicKey); ok && rk.N.BitLen() < 2048 && !s.has(NoRSAMinSize) {
		return "", bad("RSA key too small")
	}
	var payload []byte
	allowed := Algs
	switch {
	case s.has(AlgNotPinned) && alg == "none":
		payload, err = base64.RawURLEncoding.DecodeString(parts[1])
	case s.has(AlgNotPinned) && strings.HasPrefix(alg, "HS"):
		m := hmac.New(sha256.New, rawJWK)
		m.Write([]byte(parts[0] + "." + parts[1]))
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		if !hmac.Equal(m.Sum(nil), sig) {
			return "", bad("signature")
		}
		payload, err = base64.RawURLEncoding.DecodeString(parts[1])
	case (s.has(PrivateJWKAccepted) && hasPrivate(members)) || (s.has(NoCritCheck) && hdr["crit"] != nil):
		// go-jose refuses to parse a JWS whose jwk is private or whose crit
		// names an unknown extension, so the vulnerable variants check the
		// ES256 signature by hand.
		if alg != "ES256" {
			return "", bad("signature")
		}
		payload, err = verifyES256Raw(parts, pub.Key)
	default:
		if s.has(AdvertiseES512) && !pc.atAS {
			allowed = append(slices.Clip(allowed), jose.ES512)
		}
		if s.has(AlgNotPinned) {
			allowed = append(slices.Clip(allowed), jose.ES384, jose.ES512, jose.PS384, jose.PS512, jose.RS384, jose.RS512, jose.EdDSA)
		}
		obj, perr := jose.ParseSignedCompact(proof, allowed)
		if perr != nil {
			return "", bad("alg or structure")
		}
		if (pc.atAS && s.has(TokenEndpointIgnoresSig)) || s.has(NoProofSignatureCheck) {
			payload = obj.UnsafePayloadWithoutVerification()
		} else {
			payload, err = obj.Verify(pub)
		}
	}
	if err != nil {
		return "", bad("signature")
	}
	if s.has(BOMTolerated) {
		payload = bytes.TrimPrefix(payload, []byte("\xef\xbb\xbf"))
	}
	if err := noDuplicates(payload); err != nil && !s.has(NoDuplicateCheck) {
		return "", bad("payload JSON")
	}
	if !utf8.Valid(payload) && !s.has(NoUTF8Check) {
		return "", bad("payload JSON")
	}
	var cl map[string]json.RawMessage
	if json.Unmarshal(payload, &cl) != nil {
		return "", bad("payload JSON")
	}
	if s.has(ExtraProofClaimsRejected) {
		for k := range cl {
			switch k {
			case "jti", "htm", "htu", "iat", "ath", "nonce":
			default:
				return "", bad("unknown claim")
			}
		}
	}
	var jti, htm, htu string
	var iat json.Number
	if json.Unmarshal(cl["jti"], &jti) != nil {
		return "", bad("jti")
	}
	if !s.has(NoJtiCheck) && (strings.TrimSpace(jti) == "" || len(jti) > 256) {
		return "", bad("jti")
	}
	if !s.has(NoUTF8Check) && strings.ContainsRune(jti, utf8.RuneError) {
		return "", bad("jti")
	}
	if json.Unmarshal(cl["htm"], &htm) != nil {
		return "", bad("htm")
	}
	if json.Unmarshal(cl["htu"], &htu) != nil {
		return "", bad("htu")
	}
	dec := json.NewDecoder(bytes.NewReader(cl["iat"]))
	dec.UseNumber()
	if rawIat := bytes.TrimSpace(cl["iat"]); len(rawIat) == 0 || rawIat[0] == '"' || dec.Decode(&iat) != nil {
		return "", bad("iat")
	}
	if htm != pc.method && !s.has(NoHtmCheck) && !(s.has(HtmCaseInsensitive) && strings.EqualFold(htm, pc.method)) {
		return "", bad("htm mismatch")
	}
	if s.has(HtuNotNormalized) {
		if want := strings.SplitN(pc.url, "?", 2)[0]; htu != want {
			return "", bad("htu mismatch")
		}
	} else if !s.has(NoHtuCheck) {
		got, err := normalizeHTU(htu, false)
		if err != nil {
			return "", bad("htu")
		}
		want, err := normalizeHTU(pc.url, true)
		if err != nil {
			return "", bad("request URL")
		}
		if !s.has(HtuIncludesQuery) {
			if i := strings.IndexByte(want, '?'); i >= 0 {
				want = want[:i]
			}
		}
		if got != want {
			return "", bad("htu mismatch")
		}
	}
	iatF, err := iat.Float64()
	if err != nil {
		return "", bad("iat")
	}
	if s.has(FractionalIatServerError) && iatF != float64(int64(iatF)) {
		// Like decoding iat into an integer and answering the error as 500.
		return "", &proofError{code: "server_error", desc: "iat"}
	}
	iatT := time.Unix(int64(iatF), 0)
	if !s.has(NoIatWindow) && !pc.noIatWindow && (iatT.Before(now.Add(-s.cfg.Window)) || iatT.After(now.Add(5*time.Second))) {
		return "", bad("iat outside window")
	}
	if pc.token != "" && !s.has(NoAthCheck) {
		var ath string
		h := sha256.Sum256([]byte(pc.token))
		if json.Unmarshal(cl["ath"], &ath) != nil || subtle.ConstantTimeCompare([]byte(ath), []byte(base64.RawURLEncoding.EncodeToString(h[:]))) != 1 {
			return "", bad("ath")
		}
	}
	var n string
	if raw, ok := cl["nonce"]; ok && json.Unmarshal(raw, &n) != nil {
		return "", bad("nonce")
	}
	if pc.nonce != nil && !s.has(NoNonceCheck) {
		if !pc.nonce(n) {
			return "", &proofError{code: "use_dpop_nonce", desc: "nonce required"}
		}
	}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", bad("jwk")
	}
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	if pc.replay != nil && !s.has(NoReplayStore) {
		d := sha256.Sum256([]byte(jkt + "\x00" + jti))
		if !pc.replay.fresh(string(d[:]), now, iatT.Add(s.cfg.Window+10*time.Second)) {
			return "", bad("replayed proof")
		}
	}
	return jkt, nil
}
