package sensitive_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/sensitive"
)

func ExampleCodec() {
	ctx := context.Background()
	store := herald.NewMemoryStore()
	defer store.Close()
	schemas := herald.NewSchemas()
	_ = schemas.Register("user.registered", 1, []byte(`{
		"type": "object",
		"properties": {"email": {"type": "string", "x-sensitive": true}}
	}`))
	codec, err := sensitive.New(store, schemas)
	if err != nil {
		panic(err)
	}

	e, _ := herald.NewEvent("user.registered", map[string]string{"email": "ada@example.com", "plan": "pro"})
	e.Subject = "user/ada"
	_ = codec.Encode(ctx, e) // before it is stored
	fmt.Println(strings.Contains(string(e.Data), "ada@example.com"))

	read := *e
	_ = codec.Decode(ctx, &read) // when it is read
	fmt.Println(string(read.Data))

	_ = codec.Forget(ctx, "user/ada") // crypto-shredding
	read = *e
	_ = codec.Decode(ctx, &read)
	fmt.Println(string(read.Data), read.Metadata[sensitive.ShreddedMetadata])
	// Output:
	// false
	// {"email":"ada@example.com","plan":"pro"}
	// {"email":null,"plan":"pro"} data.email
}
