module github.com/authproxy/authproxy

go 1.26.8

require (
	github.com/sirupsen/logrus v1.10.2
	golang.org/x/sync v0.24.0
)

require golang.org/x/sys v0.29.0 // indirect
