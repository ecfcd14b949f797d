// A checker nobody at kyso wrote the parsing of: Go's golang.org/x/mod/sumdb/note opens the note, matches
// signature lines to keys by name and key hash, and rejects a bad signature by a known key; it verifies the log
// (type 0x01) itself, and a cosignature/v1 (type 0x04) through the small Verifier below, written from the
// text of c2sp.org/tlog-cosignature.

package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

type cosigV1 struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

func (v *cosigV1) Name() string    { return v.name }
func (v *cosigV1) KeyHash() uint32 { return v.hash }
func (v *cosigV1) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig[:8])
	if t == 0 || t > 1<<63-1 {
		return false
	}
	m := []byte("cosignature/v1\ntime " + strconv.FormatUint(t, 10) + "\n")
	m = append(m, msg...)
	return ed25519.Verify(v.key, m, sig[8:])
}

func newCosigV1(vkey string) (*cosigV1, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("bad vkey")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 33 || raw[0] != 0x04 {
		return nil, fmt.Errorf("not a cosignature/v1 key")
	}
	h := sha256.Sum256(append([]byte(parts[0]+"\n\x04"), raw[1:]...))
	id := binary.BigEndian.Uint32(h[:4])
	want, err := strconv.ParseUint(parts[1], 16, 32)
	if err != nil || uint32(want) != id {
		return nil, fmt.Errorf("key hash mismatch")
	}
	return &cosigV1{parts[0], id, ed25519.PublicKey(raw[1:])}, nil
}

// usage: checker NOTEFILE LOGVKEY WITNESSVKEY...; exit 0 when the log and every witness signed
func main() {
	msg, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	logV, err := note.NewVerifier(os.Args[2])
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	vs := []note.Verifier{logV}
	for _, k := range os.Args[3:] {
		w, err := newCosigV1(k)
		if err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		vs = append(vs, w)
	}
	n, err := note.Open(msg, note.VerifierList(vs...))
	if err != nil {
		fmt.Println("refused:", err)
		os.Exit(1)
	}
	seen := map[string]bool{}
	for _, s := range n.Sigs {
		seen[s.Name] = true
	}
	for _, v := range vs {
		if !seen[v.Name()] {
			fmt.Println("missing signature by", v.Name())
			os.Exit(1)
		}
	}
	fmt.Println("ok", len(n.Sigs))
}
