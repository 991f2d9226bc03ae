# Runs `strata generate` without --model from a scratch working directory and checks that the
# embedded default model answers with the greedy continuation transformers gave at training time
# (models/default/README.md, "Samples"), for a plain prompt and for a chat turn whose control
# tokens (<|user|>, <|end|>, <|assistant|>) must be split out of the text by the tokenizer.
file(MAKE_DIRECTORY ${WORK})
file(WRITE ${WORK}/prompts.jsonl
  "{\"prompt\": \"Once upon a time, there was a little\", \"max_tokens\": 60, \"temperature\": 0}\n"
  "{\"prompt\": \"<|user|>Tell me a story.<|end|><|assistant|>\", \"max_tokens\": 120, \"temperature\": 0}\n")
execute_process(COMMAND ${STRATA} generate --input prompts.jsonl --log-level warn
  WORKING_DIRECTORY ${WORK} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "strata generate failed (${rc}): ${err}")
endif()
set(expected "goat named Ruby. She lived in a pretty village near the old bridge. One day, Ruby found a big key in the grass. \\\"Let us go and see!\\\" Ruby shouted. But soon Ruby felt lonely. \\\"I am a bit scared.\\\" she cried. Then the bear came and held her")
set(expected_chat "One cold winter day, a clever child named Nora went to the forest. She lived in a pretty village near the old bridge. One day, Nora saw a big key in the grass. \\\"Let us go and see!\\\" Nora shouted. But soon Nora felt lonely. \\\"I do not know the way.\\\" she asked. Then the squirrel came and shared a snack with her. \\\"You are a good friend.\\\" said the squirrel. Nora felt happy and went home to tell her family.")
foreach(want "\"text\":\"${expected}\"" "\"finish_reason\":\"stop\",\"index\":1,\"output_ids\"" "\"prompt_tokens\":9,\"text\":\"${expected_chat}\"")
  string(FIND "${out}" "${want}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "unexpected output from the default model:\n${out}\nwanted: ${want}")
  endif()
endforeach()
message(STATUS "default model: ${out}")
