package app

import (
	"context"
)

// watch reloads the config on change; filled in by the reload commit.
func (rt *program) watch(ctx context.Context, path string, opts Options) func() { return func() {} }
