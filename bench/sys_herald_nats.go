package main

// registerHeraldNATS registers herald on store/nats once that store exists.
func registerHeraldNATS(r map[string]system) {
	for _, sc := range []string{"durable-e2e", "replay-1m", "nats-publish", "nats-consume"} {
		r[sc+"/herald-nats"] = system{missing: "store/nats has not landed in the repository yet"}
	}
}
