package sensitive_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/sensitive"
)

// The codec is given once, to the bus: it keeps its keys in the bus's KV
// and learns the sensitive fields from the bus's schemas. The bus seals
// what it stores and opens what it reads.
func ExampleCodec() {
	ctx := context.Background()
	codec, err := sensitive.New(nil, nil)
	if err != nil {
		panic(err)
	}
	bus, err := herald.New(herald.WithCodec(codec))
	if err != nil {
		panic(err)
	}
	defer bus.Close(ctx)
	_ = bus.Schemas().Register("user.registered", 1, []byte(`{
		"type": "object",
		"properties": {"email": {"type": "string", "x-sensitive": true}}
	}`))

	e, _ := herald.NewEvent("user.registered", map[string]string{"email": "ada@example.com", "plan": "pro"})
	e.Subject = "user/ada"
	if _, err := bus.Publish(ctx, e); err != nil {
		panic(err)
	}
	stored, _ := bus.Get(ctx, e.ID, herald.Raw()) // as stored
	fmt.Println(strings.Contains(string(stored.Data), "ada@example.com"))

	read, _ := bus.Get(ctx, e.ID) // as read
	fmt.Println(string(read.Data))

	_ = bus.Forget(ctx, "user/ada") // crypto-shredding
	read, _ = bus.Get(ctx, e.ID)
	fmt.Println(string(read.Data), read.Metadata[sensitive.ShreddedMetadata])
	// Output:
	// false
	// {"email":"ada@example.com","plan":"pro"}
	// {"email":null,"plan":"pro"} data.email
}
