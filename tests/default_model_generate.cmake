# Runs `strata generate` without --model from a scratch working directory and checks that the
# embedded default model answers with the greedy continuation transformers gave at training time
# (models/default/README.md, "Samples").
file(MAKE_DIRECTORY ${WORK})
file(WRITE ${WORK}/prompts.jsonl
  "{\"prompt\": \"Once upon a time, there was a little\", \"max_tokens\": 60, \"temperature\": 0}\n")
execute_process(COMMAND ${STRATA} generate --input prompts.jsonl --log-level warn
  WORKING_DIRECTORY ${WORK} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "strata generate failed (${rc}): ${err}")
endif()
set(expected "turtle named Ruby. She lived in a small village near the hill. She wanted to find a new friend. One day, Ruby saw a small feather in the grass. \\\"This is so much fun!\\\" Ruby shouted. But soon Ruby felt hungry. \\\"I do not know the way.\\\" she cried")
string(FIND "${out}" "\"text\":\"${expected}\"" at)
if(at EQUAL -1)
  message(FATAL_ERROR "unexpected output from the default model:\n${out}\nexpected text: ${expected}")
endif()
message(STATUS "default model: ${out}")
