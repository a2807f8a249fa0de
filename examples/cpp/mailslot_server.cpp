// CppMailslotServer: creates the mailslot \\.\mailslot\HelloWorld, and every few seconds
// asks how many messages wait (GetMailslotInfo) and reads them one by one.
//
// Usage: mailslot_server [NAME [PERIOD_MS [CHECKS]]] (period 5000 ms; checks: forever)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "procwire.hpp"

int main(int argc, char** argv) try {
    const char* name = argc > 1 ? argv[1] : "\\\\.\\mailslot\\HelloWorld";
    const long period_ms = argc > 2 ? std::atol(argv[2]) : 5000;
    const long checks = argc > 3 ? std::atol(argv[3]) : -1;

    ProcwireMailslotOptions options;
    procwire::check(procwire_mailslot_options_init(&options), "procwire_mailslot_options_init");
    options.read_timeout_ms = 0;
    ProcwireMailslot* raw = nullptr;
    procwire::check(procwire_mailslot_create(name, &options, &raw), "procwire_mailslot_create");
    procwire::Mailslot slot(raw);
    std::printf("The mailslot (%s) is created.\n", name);
    std::fflush(stdout);

    for (long check = 1; checks < 0 || check <= checks; ++check) {
        std::this_thread::sleep_for(std::chrono::milliseconds(period_ms));
        ProcwireMailslotInfo info;
        procwire::check(procwire_mailslot_info(slot.get(), &info), "procwire_mailslot_info");
        std::printf("Check %ld: %zu message(s) waiting\n", check, info.waiting);
        for (size_t i = 1; i <= info.waiting; ++i) {
            // The buffer is sized from GetMailslotInfo's next-message size, as in the seed.
            ProcwireMailslotInfo next;
            procwire::check(procwire_mailslot_info(slot.get(), &next), "procwire_mailslot_info");
            std::vector<uint8_t> buffer(next.next_size);
            size_t got = 0;
            procwire::check(procwire_mailslot_read_into(slot.get(), buffer.data(), buffer.size(), &got),
                            "procwire_mailslot_read_into");
            std::string message(buffer.begin(), buffer.begin() + got);
            std::printf("Message #%zu: \"%s\" (%zu bytes)\n", i, message.c_str(), got);
        }
        std::fflush(stdout);
    }
    return 0;
} catch (const procwire::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
