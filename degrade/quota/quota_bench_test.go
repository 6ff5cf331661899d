package quota_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/modelgate/modelgate/degrade/quota"
)

func BenchmarkReserveCommit(b *testing.B) {
	q := quota.New(nil)
	lim := quota.Limits{RPM: 1 << 30, TPM: 1 << 30}
	names := make([]string, 64)
	for i := range names {
		names[i] = fmt.Sprint("consumer-", i)
	}
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r, _, err := q.Reserve(ctx, names[i%len(names)], lim, 300, now)
			if err != nil {
				b.Error(err)
				return
			}
			r.Commit(250)
			i++
		}
	})
}
