package loadgen

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"runtime"
	"slices"
	"time"
)

// Raw verification timing: rawRounds rounds of rawPerRound verifications,
// of which the median round counts.
const (
	rawRounds   = 15
	rawPerRound = 100
)

// RawVerifyCost returns the cost of one raw ECDSA P-256 verification on
// this machine now: SHA-256 over a JWS signing input of the size of a DPoP
// proof, then ecdsa.VerifyASN1. It is the median of 15 rounds of 100
// verifications, each timed in CPU time of its thread where the platform
// allows (so that other processes on the machine do not inflate it), else
// in wall time. It takes about 100 ms; 0 means it could not be measured.
func RawVerifyCost() time.Duration {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return 0
	}
	input := make([]byte, 420)
	if _, err := rand.Read(input); err != nil {
		return 0
	}
	sum := sha256.Sum256(input)
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		return 0
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rounds := make([]time.Duration, 0, rawRounds)
	for range rawRounds {
		t0, wall0 := threadCPU(), time.Now()
		for range rawPerRound {
			d := sha256.Sum256(input)
			if !ecdsa.VerifyASN1(&key.PublicKey, d[:], sig) {
				return 0
			}
		}
		d := threadCPU() - t0
		if t0 < 0 || d <= 0 {
			d = time.Since(wall0)
		}
		rounds = append(rounds, d/rawPerRound)
	}
	slices.Sort(rounds)
	return rounds[len(rounds)/2]
}
