package quietinit_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestLibraryPrintsNothingAtInit builds a program that imports the router
// and checks that nothing reaches stderr before main: no VictoriaMetrics PSI line
// (on machines whose cgroup lacks the pressure files, as in most
// containers), and that stderr works again once packages are initialized.
func TestLibraryPrintsNothingAtInit(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "lib")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/lib").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if stderr.String() != "stderr after init\n" || stdout.String() != "true\n" {
		t.Fatalf("stdout %q, stderr %q", &stdout, &stderr)
	}
}
