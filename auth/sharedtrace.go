package auth

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// tracedShared records each call a Cache makes to its Shared store (the
// fleet's Redis) as a span: the reads of the stored token, the fleet lock
// and what is done under it. Changed is not traced: it only hands out a
// channel.
type tracedShared struct {
	Shared
	tracer trace.Tracer
}

func (s tracedShared) LoadToken(ctx context.Context, key string) (*SharedToken, error) {
	ctx, span := s.tracer.Start(ctx, SpanSharedLoad, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	st, err := s.Shared.LoadToken(ctx, key)
	span.SetAttributes(attrFound.Bool(st != nil))
	endShared(span, err)
	return st, err
}

func (s tracedShared) Lock(ctx context.Context, key string, ttl time.Duration) (Lock, error) {
	ctx, span := s.tracer.Start(ctx, SpanSharedLock, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	l, err := s.Shared.Lock(ctx, key, ttl)
	span.SetAttributes(attrAcquired.Bool(err == nil))
	if errors.Is(err, ErrLocked) {
		// Not a failure: another replica is fetching, and this one waits.
		return l, err
	}
	endShared(span, err)
	if err != nil {
		return l, err
	}
	return tracedLock{Lock: l, tracer: s.tracer}, nil
}

func (s tracedShared) Reject(ctx context.Context, key string, epoch int64) (int64, error) {
	ctx, span := s.tracer.Start(ctx, SpanSharedReject, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	n, err := s.Shared.Reject(ctx, key, epoch)
	endShared(span, err)
	return n, err
}

// tracedLock is a held lock whose Put and Release are spans.
type tracedLock struct {
	Lock
	tracer trace.Tracer
}

func (l tracedLock) Put(ctx context.Context, id string, tok *Token) (int64, error) {
	ctx, span := l.tracer.Start(ctx, SpanSharedPut, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	n, err := l.Lock.Put(ctx, id, tok)
	endShared(span, err)
	return n, err
}

func (l tracedLock) Release(ctx context.Context) error {
	ctx, span := l.tracer.Start(ctx, SpanSharedRelease, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	err := l.Lock.Release(ctx)
	endShared(span, err)
	return err
}

// endShared marks a store call that failed. The store's errors name no
// secret (its URL's password is never in them: see store.Redis).
func endShared(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
}

// traceStore records the calls a RefreshGrant makes to its Store (a file,
// or the fleet's Redis) as spans, keeping exactly the optional interfaces
// (Updater, Swapper) s has: a grant decides by them how to save.
func traceStore(s Store, tp trace.TracerProvider) Store {
	if _, noop := tp.(noop.TracerProvider); s == nil || tp == nil || noop {
		return s
	}
	t := tracedStore{Store: s, tracer: tp.Tracer(TracerName)}
	_, updates := s.(Updater)
	_, swaps := s.(Swapper)
	switch {
	case updates && swaps:
		return struct {
			tracedStore
			tracedUpdate
			tracedSwap
		}{t, tracedUpdate{t}, tracedSwap{t}}
	case updates:
		return struct {
			tracedStore
			tracedUpdate
		}{t, tracedUpdate{t}}
	case swaps:
		return struct {
			tracedStore
			tracedSwap
		}{t, tracedSwap{t}}
	}
	return t
}

// Span names of the Store's calls.
const (
	SpanStoreLoad   = "authproxy.store.load"
	SpanStoreSave   = "authproxy.store.save"
	SpanStoreUpdate = "authproxy.store.update"
	SpanStoreSwap   = "authproxy.store.swap"
)

type tracedStore struct {
	Store
	tracer trace.Tracer
}

func (s tracedStore) Load(ctx context.Context, name string) (*Record, error) {
	ctx, span := s.tracer.Start(ctx, SpanStoreLoad, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	rec, err := s.Store.Load(ctx, name)
	span.SetAttributes(attrFound.Bool(rec != nil))
	endShared(span, err)
	return rec, err
}

func (s tracedStore) Save(ctx context.Context, name string, r Record) error {
	ctx, span := s.tracer.Start(ctx, SpanStoreSave, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	err := s.Store.Save(ctx, name, r)
	endShared(span, err)
	return err
}

type tracedUpdate struct{ s tracedStore }

func (u tracedUpdate) Update(ctx context.Context, name string, fn func(cur *Record) (*Record, error)) error {
	ctx, span := u.s.tracer.Start(ctx, SpanStoreUpdate, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	err := u.s.Store.(Updater).Update(ctx, name, fn)
	endShared(span, err)
	return err
}

type tracedSwap struct{ s tracedStore }

func (w tracedSwap) Swap(ctx context.Context, name, old string, r Record) error {
	ctx, span := w.s.tracer.Start(ctx, SpanStoreSwap, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	err := w.s.Store.(Swapper).Swap(ctx, name, old, r)
	// A moved refresh token is an answer, not a failure of the store.
	if !errors.Is(err, ErrRefreshTokenMoved) {
		endShared(span, err)
	}
	return err
}
