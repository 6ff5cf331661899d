// Package quietinit silences the line VictoriaMetrics/metrics logs at
// init when the cgroup's pressure (PSI) files are missing ("INFO: metrics:
// disable exposing PSI metrics ..."), which would otherwise start every
// program that links modelgate, the daemon's usage text included.
//
// Package mute points stderr at /dev/null before metrics initializes (it
// depends on syscall alone, metrics on log and fmt, and Go initializes the
// first ready package in import-path order); this package imports metrics,
// so its init runs after metrics's and restores stderr. Import it for its
// side effect from every package that imports metrics.
package quietinit

import (
	_ "github.com/VictoriaMetrics/metrics"

	"github.com/modelgate/modelgate/internal/quietinit/mute"
)

func init() { mute.Restore() }
