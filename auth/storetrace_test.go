package auth

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

type plainStore struct{ rec *Record }

func (s *plainStore) Load(context.Context, string) (*Record, error)    { return s.rec, nil }
func (s *plainStore) Save(_ context.Context, _ string, r Record) error { s.rec = &r; return nil }

type updatingStore struct{ plainStore }

func (s *updatingStore) Update(ctx context.Context, name string, fn func(*Record) (*Record, error)) error {
	next, err := fn(s.rec)
	if err == nil && next != nil {
		s.rec = next
	}
	return err
}

type swappingStore struct{ plainStore }

func (s *swappingStore) Swap(ctx context.Context, name, old string, r Record) error {
	s.rec = &r
	return nil
}

type fullStore struct {
	updatingStore
}

func (s *fullStore) Swap(ctx context.Context, name, old string, r Record) error {
	s.rec = &r
	return nil
}

// A traced Store is an Updater or a Swapper exactly when the store it
// wraps is one (a RefreshGrant chooses how to save by them), and each
// call is a span.
func TestTracedStoreKeepsItsInterfaces(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	for _, s := range []Store{&plainStore{}, &updatingStore{}, &swappingStore{}, &fullStore{}} {
		traced := traceStore(s, tp)
		_, u1 := s.(Updater)
		_, u2 := traced.(Updater)
		_, s1 := s.(Swapper)
		_, s2 := traced.(Swapper)
		if u1 != u2 || s1 != s2 {
			t.Errorf("%T: Updater %v, Swapper %v; traced: %v, %v", s, u1, s1, u2, s2)
		}
		ctx := context.Background()
		traced.Save(ctx, "api", Record{RefreshToken: "rt"})
		traced.Load(ctx, "api")
		want := 2
		if u2 {
			traced.(Updater).Update(ctx, "api", func(cur *Record) (*Record, error) { return cur, nil })
			want++
		}
		if s2 {
			traced.(Swapper).Swap(ctx, "api", "rt", Record{RefreshToken: "rt2"})
			want++
		}
		if got := len(spans.Ended()); got != want {
			t.Errorf("%T: %d spans, want %d", s, got, want)
		}
		spans.Reset()
	}
	if plain := (&plainStore{}); traceStore(plain, nil) != Store(plain) || traceStore(nil, tp) != nil {
		t.Error("traceStore wrapped a store without a tracer, or a nil store")
	}
}
