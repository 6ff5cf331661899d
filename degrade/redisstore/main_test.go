package redisstore

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/modelgate/modelgate/internal/leaktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }
