package mtlsbound

import (
	"crypto"
	"encoding/pem"
	"errors"
)

const crypto256 = crypto.SHA256

type pemBlock = pem.Block

func errorsIs(err, target error) bool { return errors.Is(err, target) }
