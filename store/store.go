// Package store keeps tokens across restarts: the newest refresh token of
// an API that rotates them is the one thing that cannot be lost. File
// writes it durably to a JSON file; Memory keeps nothing across restarts.
// Both implement auth.Store.
package store

import (
	"context"
	"sync"

	"github.com/authproxy/authproxy/auth"
)

// Memory keeps records in memory only. The zero value is ready to use.
type Memory struct {
	mu      sync.Mutex
	records map[string]auth.Record
}

var _ auth.Store = (*Memory)(nil)

// Load returns the record for name, or nil.
func (m *Memory) Load(_ context.Context, name string) (*auth.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[name]
	if !ok {
		return nil, nil
	}
	return &r, nil
}

// Save replaces the record for name.
func (m *Memory) Save(ctx context.Context, name string, r auth.Record) error {
	return m.Update(ctx, name, func(*auth.Record) (*auth.Record, error) { return &r, nil })
}

var _ auth.Updater = (*Memory)(nil)

// Update runs fn on the record for name under the store's mutex, and
// keeps what it returns.
func (m *Memory) Update(_ context.Context, name string, fn func(cur *auth.Record) (*auth.Record, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var cur *auth.Record
	if r, ok := m.records[name]; ok {
		cur = &r
	}
	next, err := fn(cur)
	if err != nil || next == nil {
		return err
	}
	if m.records == nil {
		m.records = map[string]auth.Record{}
	}
	m.records[name] = *next
	return nil
}
