// Package console holds the files of the herald console, the web pages
// herald serve answers at /ui/: plain HTML, CSS and JavaScript modules,
// written by hand and embedded in the binary, with no build step and no
// third-party code. The server package serves them (with a strict
// Content-Security-Policy) and runs the console's sessions; this package
// only carries the files.
package console

import (
	"embed"
	"io/fs"
)

//go:embed ui
var files embed.FS

// FS returns the console's files: index.html (every page), login.html, and
// the assets the pages load (assets/*.js, assets/*.css, assets/*.svg).
func FS() fs.FS {
	sub, err := fs.Sub(files, "ui")
	if err != nil {
		panic(err) // the directory is embedded: it cannot be missing
	}
	return sub
}
