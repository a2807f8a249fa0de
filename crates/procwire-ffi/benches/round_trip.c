/* The C side of the `round_trip` benchmark (benches/round_trip.rs builds it with gcc
 * against libprocwire_ffi.a and runs it): a pipe client that times round trips.
 *
 * Usage:
 *   round_trip NAME SIZE WARMUP PER_BATCH
 *
 * Connects to the message pipe NAME (an echo server), does WARMUP round trips untimed and
 * prints "ready". Then, for each line read from standard input, times one batch of
 * PER_BATCH round trips of SIZE bytes (`procwire_pipe_send`, then
 * `procwire_pipe_recv_into` a reused buffer) and prints the nanoseconds per round trip;
 * exits 0 at the end of its input. On a failure prints "STATUS: message" on stderr and
 * exits 1. The Rust client of the same benchmark does exactly this through the library,
 * so that the runner can alternate their batches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "procwire.h"

static int fail(ProcwireStatus status) {
    fprintf(stderr, "%s: %s\n", procwire_status_name(status), procwire_last_error_message());
    return 1;
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + (long long)t.tv_nsec;
}

/* One round trip: the message out, its echo back whole. */
static ProcwireStatus round_trip(ProcwirePipeConnection *pipe, const uint8_t *message,
                                 size_t size, uint8_t *answer) {
    ProcwireStatus status = procwire_pipe_send(pipe, message, size);
    if (status != PROCWIRE_STATUS_OK) return status;
    size_t got = 0;
    bool complete = false;
    status = procwire_pipe_recv_into(pipe, answer, size + 1, &got, &complete);
    if (status == PROCWIRE_STATUS_OK && (got != size || !complete)) {
        fprintf(stderr, "the echo was %zu bytes (complete: %d), not %zu\n", got, complete,
                size);
        exit(1);
    }
    return status;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: round_trip NAME SIZE WARMUP PER_BATCH\n");
        return 2;
    }
    const char *name = argv[1];
    size_t size = (size_t)atol(argv[2]);
    long warmup = atol(argv[3]), per_batch = atol(argv[4]);
    if (per_batch <= 0) {
        fprintf(stderr, "PER_BATCH must be positive\n");
        return 2;
    }

    ProcwireClientOptions options;
    procwire_client_options_init(&options);
    options.read_mode = PROCWIRE_PIPE_MODE_MESSAGE;
    ProcwirePipeConnection *pipe = NULL;
    ProcwireStatus status = procwire_pipe_open(name, &options, &pipe);
    if (status != PROCWIRE_STATUS_OK) return fail(status);

    uint8_t *message = malloc(size + 1);
    uint8_t *answer = malloc(size + 1);
    if (message == NULL || answer == NULL) return 1;
    memset(message, 7, size + 1);

    for (long i = 0; i < warmup; ++i) {
        status = round_trip(pipe, message, size, answer);
        if (status != PROCWIRE_STATUS_OK) return fail(status);
    }
    printf("ready\n");
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin) != NULL) {
        long long start = now_ns();
        for (long i = 0; i < per_batch; ++i) {
            status = round_trip(pipe, message, size, answer);
            if (status != PROCWIRE_STATUS_OK) return fail(status);
        }
        printf("%.1f\n", (double)(now_ns() - start) / (double)per_batch);
        fflush(stdout);
    }
    free(message);
    free(answer);
    procwire_pipe_connection_free(pipe);
    return 0;
}
