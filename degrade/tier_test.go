package degrade_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/modelgate/modelgate/degrade"
)

// parseCase is one input of a Parse function: its result, or bad.
type parseCase[T any] struct {
	in   string
	want T
	bad  bool
}

// testParse runs parse over cases; a bad input must fail with sentinel, a
// good one must give want and survive a round trip through String.
func testParse[T interface {
	comparable
	fmt.Stringer
}](t *testing.T, parse func(string) (T, error), sentinel error, cases []parseCase[T]) {
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parse(tc.in)
			switch {
			case tc.bad && !errors.Is(err, sentinel):
				t.Fatalf("err = %v, want %v", err, sentinel)
			case tc.bad:
			case err != nil || got != tc.want:
				t.Fatalf("parse(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			default:
				if again, err := parse(got.String()); err != nil || again != got {
					t.Fatalf("round trip of %v: %v, %v", got, again, err)
				}
			}
		})
	}
}

func TestParseTier(t *testing.T) {
	testParse(t, degrade.ParseTier, degrade.ErrBadTier, []parseCase[degrade.Tier]{
		{"0", degrade.TierNormal, false}, {"normal", degrade.TierNormal, false},
		{"1", degrade.TierShed, false}, {"Shed", degrade.TierShed, false},
		{"2", degrade.TierCap, false}, {"CAP", degrade.TierCap, false},
		{"3", degrade.TierCache, false}, {"cache", degrade.TierCache, false},
		{"4", 0, true}, {"auto", 0, true}, {"", 0, true}, {"-1", 0, true},
	})
	if s := degrade.Tier(7).String(); s != "tier(7)" {
		t.Fatalf("Tier(7).String() = %q", s)
	}
}

func TestParseClass(t *testing.T) {
	testParse(t, degrade.ParseClass, degrade.ErrBadClass, []parseCase[degrade.Class]{
		{"", degrade.Standard, false}, {"standard", degrade.Standard, false},
		{"Critical", degrade.Critical, false}, {"sheddable", degrade.Sheddable, false},
		{"high", 0, true}, {"0", 0, true},
	})
	var zero degrade.Class
	if zero != degrade.Standard {
		t.Fatal("the zero Class must be Standard")
	}
	if s := degrade.Class(9).String(); s != "class(9)" {
		t.Fatalf("Class(9).String() = %q", s)
	}
}

func TestTextEncoding(t *testing.T) {
	type cfg struct {
		Tier  degrade.Tier  `json:"tier"`
		Class degrade.Class `json:"class"`
	}
	b, err := json.Marshal(cfg{degrade.TierCache, degrade.Critical})
	if err != nil || string(b) != `{"tier":"cache","class":"critical"}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var back cfg
	if err := json.Unmarshal([]byte(`{"tier":"2","class":"sheddable"}`), &back); err != nil || back != (cfg{degrade.TierCap, degrade.Sheddable}) {
		t.Fatalf("Unmarshal = %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"tier":"auto"}`), &back); !errors.Is(err, degrade.ErrBadTier) {
		t.Fatalf("bad tier: %v", err)
	}
	if err := json.Unmarshal([]byte(`{"class":"vip"}`), &back); !errors.Is(err, degrade.ErrBadClass) {
		t.Fatalf("bad class: %v", err)
	}
	if _, err := json.Marshal(cfg{Tier: 9}); !errors.Is(err, degrade.ErrBadTier) {
		t.Fatalf("marshal bad tier: %v", err)
	}
	if _, err := json.Marshal(cfg{Class: 9}); !errors.Is(err, degrade.ErrBadClass) {
		t.Fatalf("marshal bad class: %v", err)
	}
}
