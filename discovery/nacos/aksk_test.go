package nacos

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/common/security"
)

// akskServer stands in for a Nacos that checks access keys (Nacos 3
// standalone does not: its auth plugin checks users only). It checks each
// request's signature with the SDK's own signing function.
func akskServer(t *testing.T, ak, sk string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		data := q.Get("data")
		want, _ := security.Sign(data, sk)
		ms, _ := strconv.ParseInt(strings.SplitN(data, "@@", 2)[0], 10, 64)
		if q.Get("ak") != ak || q.Get("signature") != want || time.Since(time.UnixMilli(ms)).Abs() > time.Minute {
			http.Error(w, "signature mismatch", http.StatusForbidden)
			return
		}
		switch r.URL.Path {
		case "/nacos/v1/ns/service/list":
			_, _ = w.Write([]byte(`{"count":1,"doms":["qwen"]}`))
		case "/nacos/v1/ns/instance/list":
			if !strings.HasSuffix(data, "@@"+q.Get("groupName")+"@@"+q.Get("serviceName")) {
				http.Error(w, "signed data names another service", http.StatusForbidden)
				return
			}
			_, _ = w.Write([]byte(`{"hosts":[{"ip":"10.0.0.1","port":8000,"weight":1,"healthy":true,"enabled":true}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestAccessKeySigning(t *testing.T) {
	srv := akskServer(t, "ak-test", "sk-test")
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		name, sk string
		ok       bool
	}{{"right secret", "sk-test", true}, {"wrong secret", "sk-wrong", false}} {
		t.Run(tc.name, func(t *testing.T) {
			api, err := newHTTPAPI(ClientConfig{Servers: []string{addr}, AccessKey: "ak-test", SecretKey: tc.sk, TimeoutMs: 5000})
			if err != nil {
				t.Fatal(err)
			}
			defer api.client.CloseIdleConnections()
			names, _, lerr := api.services("LLM", 1, 100)
			hosts, ierr := api.instances("LLM", "qwen")
			if !tc.ok {
				if !errors.Is(lerr, ErrAuth) || !errors.Is(ierr, ErrAuth) || !strings.Contains(ierr.Error(), "signature mismatch") {
					t.Fatalf("want ErrAuth with the server's message, got %v / %v", lerr, ierr)
				}
				return
			}
			if lerr != nil || ierr != nil || len(names) != 1 || len(hosts) != 1 {
				t.Fatalf("signed calls: %v %v %v %v", names, lerr, hosts, ierr)
			}
		})
	}
}

func TestAccessKeyNeedsSecret(t *testing.T) {
	dir := t.TempDir()
	if _, err := Dial(ClientConfig{Servers: []string{"127.0.0.1:1"}, AccessKey: "ak", CacheDir: dir, LogDir: dir}); err == nil {
		t.Fatal("an access key without a secret key must be refused")
	}
}
