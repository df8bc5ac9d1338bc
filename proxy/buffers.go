package proxy

import (
	"net/http/httputil"
	"sync"
)

// The proxy's pooled memory for copying bodies: ReverseProxy's response
// copies, request bodies written upstream (upstreamconn.go), the replay
// copy's reads past its room (replaybody.go) and the tunnels' pipes
// (tunnel.go) take their buffers from copyBuffers; the replay copies
// themselves go back to copyPool.

// copyBuffers lends ReverseProxy its 32 KiB copy buffers, which it would
// otherwise allocate for every response.
var copyBuffers httputil.BufferPool = &bufferPool{}

const copyBufferSize = 32 << 10

// bufferPool keeps array pointers, which the slices given back convert
// to: a pool of *[]byte would allocate the pointer at each Put.
type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte {
	if b, ok := p.pool.Get().(*[copyBufferSize]byte); ok {
		return b[:]
	}
	return new([copyBufferSize]byte)[:]
}

func (p *bufferPool) Put(b []byte) {
	if cap(b) >= copyBufferSize {
		p.pool.Put((*[copyBufferSize]byte)(b[:copyBufferSize]))
	}
}

// copyPool recycles body copies: without it every request with a body
// leaves its copy to the garbage collector, which on a busy proxy costs
// more than the copying.
var copyPool = sync.Pool{New: func() any { return new([]byte) }}
