package conformance_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/senderbound/senderbound/conformance"
)

// TestCatalogueGolden pins the catalogue as Cases returns it: every case's
// id, level, group, role, capabilities, section, title and expectation, in
// report order. A new or changed case changes testdata/catalogue.txt; run
// with -update and review the difference.
func TestCatalogueGolden(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	for _, c := range conformance.Cases() {
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n\t%s\n", c.ID, c.Level, c.Group, c.Role, c.Needs, c.Section, c.Title, c.Expect)
	}
	path := filepath.Join("testdata", "catalogue.txt")
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("the catalogue differs from %s; run with -update after checking the difference", path)
	}
}
