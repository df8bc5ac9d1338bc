package proxy

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/authproxy/authproxy/outbound"
)

// DialFunc dials a connection, as http.Transport.DialContext does; it is
// outbound's, whose WrapDial takes WithPooledCopy.
type DialFunc = outbound.DialFunc

// WithPooledCopy wraps dial so that request bodies are written to the
// connections it dials through the proxy's pooled copy buffers. Without
// it, net/http hands each body to the connection's ReadFrom, and a TCP
// connection's ReadFrom copies anything but a file or a socket through a
// 32 KiB buffer it allocates for that body: most of what a request with
// a body allocated. (HTTP/2 writes bodies from pooled buffers already;
// over HTTP/1.1 with TLS the copy is tls.Conn's, out of reach here.)
func WithPooledCopy(dial DialFunc) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &pooledCopyConn{c}, nil
	}
}

// pooledCopyConn is a dialled connection whose ReadFrom copies through a
// pooled buffer.
type pooledCopyConn struct{ net.Conn }

func (c *pooledCopyConn) ReadFrom(r io.Reader) (int64, error) {
	// net/http hands a body of known length over as
	// io.LimitReader(body, length): a body that keeps a replay copy
	// writes itself from that copy, with no copy through buf.
	if lr, ok := r.(*io.LimitedReader); ok {
		if body, ok := lr.R.(*copyingBody); ok {
			n, err := body.writeTo((*connWriter)(c), lr.N)
			lr.N -= n
			return n, err
		}
	}
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	// connWriter has the connection's Write but not its ReadFrom, which
	// io.CopyBuffer would otherwise prefer to buf.
	return io.CopyBuffer((*connWriter)(c), r, buf)
}

// CloseWrite half-closes the connection, where it can be: ReverseProxy
// does it on upgraded connections.
func (c *pooledCopyConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// connWriter is a pooledCopyConn with only net.Conn's methods.
type connWriter pooledCopyConn
