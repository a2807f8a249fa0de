/* A C11 program over procwire.h: the calls a C caller makes, and what failures look like.
 *
 * Usage:
 *   procwire_c hold-mutex NAME      lock the named mutex NAME, say "locked", then wait to
 *                                   be killed (it never unlocks)
 *   procwire_c lock-mutex NAME      lock NAME and say "locked" or "abandoned"
 *   procwire_c open-pipe NAME       try to open the pipe NAME; print the outcome
 *   procwire_c open-mapping NAME    try to open the mapping NAME for reading; print the outcome
 *   procwire_c too-large SLOT       create the mailslot SLOT (16-byte messages) and write
 *                                   100 bytes to it; print the outcome
 *   procwire_c null                 pass NULL where a handle belongs; print the outcome
 *   procwire_c ping NAME COUNT SIZE connect to the pipe NAME and do COUNT round trips of
 *                                   SIZE-byte messages; print the mean in nanoseconds
 *
 * An outcome is printed as "STATUS_NAME: message" on a line of its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "procwire.h"

static void outcome(ProcwireStatus status) {
    printf("%s: %s\n", procwire_status_name(status),
           status == PROCWIRE_STATUS_OK ? "" : procwire_last_error_message());
    fflush(stdout);
}

static int hold_mutex(const char *name, int forever) {
    ProcwireMutex *mutex = NULL;
    ProcwireStatus status = procwire_mutex_open_or_create(name, &mutex);
    if (status != PROCWIRE_STATUS_OK) {
        outcome(status);
        return 1;
    }
    status = procwire_mutex_lock(mutex, 5000);
    if (status == PROCWIRE_STATUS_ABANDONED) {
        printf("abandoned\n");
        procwire_mutex_mark_repaired(mutex);
    } else if (status == PROCWIRE_STATUS_OK) {
        printf("locked\n");
    } else {
        outcome(status);
        return 1;
    }
    fflush(stdout);
    if (forever) {
        for (;;) pause();
    }
    procwire_mutex_unlock(mutex);
    procwire_mutex_free(mutex);
    return 0;
}

static int open_pipe(const char *name) {
    ProcwireClientOptions options;
    procwire_client_options_init(&options);
    options.timeout_ms = 500;
    ProcwirePipeConnection *pipe = NULL;
    ProcwireStatus status = procwire_pipe_open(name, &options, &pipe);
    outcome(status);
    procwire_pipe_connection_free(pipe);
    return 0;
}

static int open_mapping(const char *name) {
    ProcwireMapping *mapping = NULL;
    ProcwireStatus status = procwire_mapping_open(name, PROCWIRE_ACCESS_READ, &mapping);
    outcome(status);
    procwire_mapping_free(mapping);
    return 0;
}

static int too_large(const char *name) {
    ProcwireMailslotOptions options;
    procwire_mailslot_options_init(&options);
    options.max_message_size = 16;
    ProcwireMailslot *slot = NULL;
    ProcwireStatus status = procwire_mailslot_create(name, &options, &slot);
    if (status != PROCWIRE_STATUS_OK) {
        outcome(status);
        return 1;
    }
    ProcwireMailslotWriter *writer = NULL;
    status = procwire_mailslot_writer_open(name, 1000, &writer);
    if (status != PROCWIRE_STATUS_OK) {
        outcome(status);
        return 1;
    }
    uint8_t message[100];
    memset(message, 'x', sizeof message);
    outcome(procwire_mailslot_write(writer, message, sizeof message));
    procwire_mailslot_writer_free(writer);
    procwire_mailslot_free(slot);
    return 0;
}

static int null_handle(void) {
    outcome(procwire_pipe_send(NULL, (const uint8_t *)"x", 1));
    return 0;
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int ping(const char *name, long count, size_t size) {
    ProcwireClientOptions options;
    procwire_client_options_init(&options);
    options.read_mode = PROCWIRE_PIPE_MODE_MESSAGE;
    ProcwirePipeConnection *pipe = NULL;
    ProcwireStatus status = procwire_pipe_open(name, &options, &pipe);
    if (status != PROCWIRE_STATUS_OK) {
        outcome(status);
        return 1;
    }
    uint8_t *message = calloc(size, 1);
    uint8_t *answer = malloc(size + 1);
    double start = now_ns();
    for (long i = 0; i < count; ++i) {
        size_t got = 0;
        bool complete = false;
        status = procwire_pipe_send(pipe, message, size);
        if (status == PROCWIRE_STATUS_OK) {
            status = procwire_pipe_recv_into(pipe, answer, size + 1, &got, &complete);
        }
        if (status != PROCWIRE_STATUS_OK) {
            outcome(status);
            return 1;
        }
    }
    printf("mean %.0f ns\n", (now_ns() - start) / (double)count);
    free(message);
    free(answer);
    procwire_pipe_connection_free(pipe);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "hold-mutex") == 0) return hold_mutex(argv[2], 1);
    if (argc >= 3 && strcmp(argv[1], "lock-mutex") == 0) return hold_mutex(argv[2], 0);
    if (argc >= 3 && strcmp(argv[1], "open-pipe") == 0) return open_pipe(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "open-mapping") == 0) return open_mapping(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "too-large") == 0) return too_large(argv[2]);
    if (argc >= 2 && strcmp(argv[1], "null") == 0) return null_handle();
    if (argc >= 5 && strcmp(argv[1], "ping") == 0)
        return ping(argv[2], atol(argv[3]), (size_t)atol(argv[4]));
    fprintf(stderr, "usage: see the comment at the top of procwire_c.c\n");
    return 2;
}
