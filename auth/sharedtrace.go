package auth

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
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
