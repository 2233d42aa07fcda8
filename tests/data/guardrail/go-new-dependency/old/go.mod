module example.org/store

go 1.22

require (
	golang.org/x/sys v0.20.0
	example.com/uuid v1.6.0
)
