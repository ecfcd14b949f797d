// tlogcheck checks a kyso transparency log with Go's golang.org/x/mod/sumdb/{note,tlog}, code kyso did not write.
//
//	tlogcheck -vkey VKEY -dir DIR [-old CHECKPOINT]   the whole log copy in DIR (C2SP tiles), and its
//	                                                  consistency with an earlier signed checkpoint
//	tlogcheck -vkey VKEY -proof FILE                  a C2SP tlog-proof whose "extra" line is the entry
//	tlogcheck -tree-proof FILE                        an RFC 6962 consistency proof: lines old size, old root,
//	                                                  new size, new root, then the proof hashes (base64)
//
// x/mod's tlog.ParseTree only knows the go.sum checkpoint origin and its Tile.Path uses the
// "tile/8/L/N" form, so the C2SP checkpoint body and tile paths are handled here; every signature,
// hash, proof and tile authentication is x/mod's.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type checkpoint struct {
	origin string
	tree   tlog.Tree
}

func parseBody(text string) (checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return checkpoint{}, errors.New("malformed checkpoint body")
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return checkpoint{}, errors.New("malformed checkpoint size")
	}
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		return checkpoint{}, errors.New("malformed checkpoint root hash")
	}
	var h tlog.Hash
	copy(h[:], raw)
	return checkpoint{lines[0], tlog.Tree{N: n, Hash: h}}, nil
}

func openCheckpoint(msg []byte, v note.Verifier) (checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return checkpoint{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	cp, err := parseBody(n.Text)
	if err != nil {
		return cp, err
	}
	if cp.origin != v.Name() {
		return cp, fmt.Errorf("checkpoint origin %q is not the key's name %q", cp.origin, v.Name())
	}
	return cp, nil
}

// dirTiles reads C2SP tiles from a directory for x/mod's TileHashReader.
type dirTiles struct{ dir string }

func (d dirTiles) Height() int { return 8 }

func c2spPath(t tlog.Tile) string {
	return "tile/" + strings.TrimPrefix(t.Path(), "tile/8/")
}

func (d dirTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, err := os.ReadFile(filepath.Join(d.dir, filepath.FromSlash(c2spPath(t))))
		if err != nil {
			return nil, err
		}
		if len(data) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("%s has %d bytes, not %d", c2spPath(t), len(data), t.W*tlog.HashSize)
		}
		out[i] = data
	}
	return out, nil
}

func (d dirTiles) SaveTiles([]tlog.Tile, [][]byte) {}

func bundlePath(index int64, width int64) string {
	t := tlog.Tile{H: 8, L: 0, N: index, W: int(width)}
	return "tile/entries/" + strings.TrimPrefix(c2spPath(t), "tile/0/")
}

func checkDir(v note.Verifier, dir, old string) error {
	msg, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		return err
	}
	cp, err := openCheckpoint(msg, v)
	if err != nil {
		return err
	}
	n := cp.tree.N
	hr := tlog.TileHashReader(cp.tree, dirTiles{dir})
	if n > 0 {
		root, err := tlog.TreeHash(n, hr)
		if err != nil {
			return fmt.Errorf("tiles: %w", err)
		}
		if root != cp.tree.Hash {
			return errors.New("the tiles do not hash to the signed root")
		}
	}
	var index int64
	for start := int64(0); start < n; start += 256 {
		width := n - start
		if width > 256 {
			width = 256
		}
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(bundlePath(start/256, width))))
		if err != nil {
			return err
		}
		for len(data) > 0 {
			if len(data) < 2 || len(data) < 2+int(binary.BigEndian.Uint16(data)) {
				return errors.New("truncated entry bundle")
			}
			size := int(binary.BigEndian.Uint16(data))
			entry := data[2 : 2+size]
			data = data[2+size:]
			if index >= start+width {
				return fmt.Errorf("bundle %d holds too many entries", start/256)
			}
			p, err := tlog.ProveRecord(n, index, hr)
			if err != nil {
				return fmt.Errorf("entry %d: %w", index, err)
			}
			if err := tlog.CheckRecord(p, n, cp.tree.Hash, index, tlog.RecordHash(entry)); err != nil {
				return fmt.Errorf("entry %d is not the one the signed tree holds: %w", index, err)
			}
			index++
		}
		if index != start+width {
			return fmt.Errorf("bundle %d holds %d entries, not %d", start/256, index-start, width)
		}
	}
	if old != "" {
		oldMsg, err := os.ReadFile(old)
		if err != nil {
			return err
		}
		prev, err := openCheckpoint(oldMsg, v)
		if err != nil {
			return fmt.Errorf("old %w", err)
		}
		switch {
		case prev.tree.N > n:
			return fmt.Errorf("stale checkpoint: size %d served, size %d seen before", n, prev.tree.N)
		case prev.tree.N == n && prev.tree.Hash != cp.tree.Hash:
			return fmt.Errorf("forked log: two roots for size %d", n)
		case prev.tree.N > 0:
			p, err := tlog.ProveTree(n, prev.tree.N, hr)
			if err != nil {
				return err
			}
			if err := tlog.CheckTree(p, n, cp.tree.Hash, prev.tree.N, prev.tree.Hash); err != nil {
				return fmt.Errorf("the old checkpoint is not a prefix of the new one: %w", err)
			}
		}
	}
	fmt.Printf("ok: %s size %d, %d entries proven\n", cp.origin, n, index)
	return nil
}

func b64hash(s string) (tlog.Hash, error) {
	var h tlog.Hash
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) != tlog.HashSize {
		return h, fmt.Errorf("bad hash %q", s)
	}
	copy(h[:], raw)
	return h, nil
}

func checkProof(v note.Verifier, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	head, cpText, ok := strings.Cut(string(data), "\n\n")
	if !ok {
		return errors.New("no blank line before the checkpoint")
	}
	lines := strings.Split(head, "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" || len(lines) < 3 || !strings.HasPrefix(lines[1], "extra ") {
		return errors.New("not a tlog-proof with an extra line")
	}
	entry, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(lines[1], "extra "))
	if err != nil {
		return err
	}
	index, err := strconv.ParseInt(strings.TrimPrefix(lines[2], "index "), 10, 64)
	if err != nil {
		return err
	}
	var p tlog.RecordProof
	for _, l := range lines[3:] {
		h, err := b64hash(l)
		if err != nil {
			return err
		}
		p = append(p, h)
	}
	cp, err := openCheckpoint([]byte(cpText), v)
	if err != nil {
		return err
	}
	if err := tlog.CheckRecord(p, cp.tree.N, cp.tree.Hash, index, tlog.RecordHash(entry)); err != nil {
		return fmt.Errorf("inclusion proof: %w", err)
	}
	fmt.Printf("ok: entry %d in %s size %d\n", index, cp.origin, cp.tree.N)
	return nil
}

func checkTreeProof(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	lines := strings.Fields(string(bytes.TrimSpace(data)))
	if len(lines) < 4 {
		return errors.New("short tree proof file")
	}
	oldN, err1 := strconv.ParseInt(lines[0], 10, 64)
	newN, err2 := strconv.ParseInt(lines[2], 10, 64)
	oldH, err3 := b64hash(lines[1])
	newH, err4 := b64hash(lines[3])
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			return err
		}
	}
	var p tlog.TreeProof
	for _, l := range lines[4:] {
		h, err := b64hash(l)
		if err != nil {
			return err
		}
		p = append(p, h)
	}
	if err := tlog.CheckTree(p, newN, newH, oldN, oldH); err != nil {
		return fmt.Errorf("consistency proof: %w", err)
	}
	fmt.Printf("ok: size %d is a prefix of size %d\n", oldN, newN)
	return nil
}

func main() {
	vkey := flag.String("vkey", "", "verifier key name+hash+base64")
	dir := flag.String("dir", "", "log copy (checkpoint, tile/...)")
	old := flag.String("old", "", "an earlier signed checkpoint of the same log")
	proof := flag.String("proof", "", "a tlog-proof file")
	treeProof := flag.String("tree-proof", "", "a consistency proof file")
	flag.Parse()
	var err error
	if *treeProof != "" {
		err = checkTreeProof(*treeProof)
	} else {
		var v note.Verifier
		v, err = note.NewVerifier(*vkey)
		if err == nil && *proof != "" {
			err = checkProof(v, *proof)
		} else if err == nil {
			err = checkDir(v, *dir, *old)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
}
