package localpg

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

var binaryNames = []string{"initdb", "pg_ctl", "postgres"}

// findBinaries returns a directory containing initdb, pg_ctl and
// postgres. All three must come from one directory: pg_ctl and initdb locate
// postgres next to themselves, and mixing major versions breaks clusters.
// PATH wins (symlinks resolved to the real bin dir), then Debian's
// /usr/lib/postgresql/<major>/bin, highest major first. When the cluster
// already exists (wantMajor != ""), only binaries of its major version fit.
func findBinaries(dir, wantMajor string) (string, error) {
	var candidates []string
	var missing []string
	for _, name := range binaryNames {
		p, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, name)
			continue
		}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if d := filepath.Dir(p); !slices.Contains(candidates, d) {
			candidates = append(candidates, d)
		}
	}
	debian, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(debian, func(i, j int) bool {
		return versionLess(debianMajor(debian[j]), debianMajor(debian[i]))
	})
	for _, d := range debian {
		if !slices.Contains(candidates, d) {
			candidates = append(candidates, d)
		}
	}

	var found []string // "dir (major)" for the error message
	for _, d := range candidates {
		if !hasBinaries(d) {
			continue
		}
		if wantMajor == "" {
			return d, nil
		}
		major := debianMajor(d)
		if major == "" {
			major = pgctlMajor(filepath.Join(d, "pg_ctl"))
		}
		if major == wantMajor {
			return d, nil
		}
		found = append(found, fmt.Sprintf("%s (PostgreSQL %s)", d, major))
	}
	if len(found) > 0 {
		return "", fmt.Errorf("db: cluster %s was created by PostgreSQL %s, but only found %s; install PostgreSQL %s or remove %s to re-create it",
			dir, wantMajor, strings.Join(found, ", "), wantMajor, dir)
	}
	if len(missing) == 0 {
		missing = binaryNames // on PATH but scattered over different dirs
	}
	return "", fmt.Errorf("db: PostgreSQL server binaries not found (%s missing from PATH and /usr/lib/postgresql/*/bin); run scripts/setup.sh to install them, or set DATABASE_URL",
		strings.Join(missing, ", "))
}

func hasBinaries(dir string) bool {
	for _, name := range binaryNames {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// debianMajor extracts <major> from /usr/lib/postgresql/<major>/bin.
func debianMajor(binDir string) string {
	parent := filepath.Dir(binDir)
	if filepath.Base(binDir) != "bin" || filepath.Dir(parent) != "/usr/lib/postgresql" {
		return ""
	}
	return filepath.Base(parent)
}

// pgctlMajor parses "pg_ctl (PostgreSQL) 15.8 (Debian ...)" into "15".
func pgctlMajor(pgctl string) string {
	out, err := exec.Command(pgctl, "--version").Output()
	if err != nil {
		return ""
	}
	_, rest, ok := strings.Cut(string(out), "(PostgreSQL)")
	if !ok {
		return ""
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return ""
	}
	v := fields[0]
	// Since PostgreSQL 10 the major version is the first component; before
	// that it was the first two (9.6), which PG_VERSION also records.
	if first, _, _ := strings.Cut(v, "."); first != "" {
		if n, err := strconv.Atoi(first); err == nil && n >= 10 {
			return first
		}
	}
	if parts := strings.SplitN(v, ".", 3); len(parts) >= 2 {
		return parts[0] + "." + parts[1]
	}
	return v
}

// versionLess compares dotted numeric versions ("9.6" < "15").
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, errx := strconv.Atoi(as[i])
		y, erry := strconv.Atoi(bs[i])
		if errx != nil || erry != nil {
			if as[i] != bs[i] {
				return as[i] < bs[i]
			}
			continue
		}
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}
